/**
 * The executables pyprime links into the bin dir: `syncLinks` on fake trees, and
 * `pyprime install/uninstall/dir` end to end with `--bin-dir`,
 * `PYPRIME_PYTHON_BIN_DIR`, `--default`, `--no-bin`, `--force` and the PATH warning.
 * HOME is always a temp dir, so no test touches the real `~/.local/bin`.
 *
 * @module
 */
import { join } from "node:path";
import { binDir, minorLinkName, onPath, syncLinks } from "../../src/install/bin_links.ts";
import { minorDirName } from "../../src/install/minor_links.ts";
import { assert, assertEquals, assertMatch, assertNotMatch } from "../support/assert.ts";
import { type CliResult, runCli } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { names, withEnv } from "../support/helpers.ts";

const fx = await fixtures();
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
const MINOR = `python${fx.tag}`;
const [MAJOR_N, MINOR_N] = fx.tag.split(".").map(Number);
/** Fake patches of the fixture's minor version, around the real one. */
const LOWER = `cpython-${fx.tag}.0-linux-x86_64-gnu`;
const HIGHER = `cpython-${fx.tag}.99-linux-x86_64-gnu`;

function re(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

async function links(bin: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await names(bin)) {
    const info = await Deno.lstat(join(bin, name));
    out[name] = info.isSymlink ? await Deno.readLink(join(bin, name)) : "<file>";
  }
  return out;
}

// ---------------------------------------------------------------------------------
// syncLinks on fake installations.

interface Sandbox {
  root: string;
  dir: string;
  bin: string;
  exe(key: string): string;
  add(key: string): Promise<void>;
  remove(): Promise<void>;
}

async function sandbox(): Promise<Sandbox> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "pyprime-links-" }));
  const dir = join(root, "pythons");
  const bin = join(root, "bin");
  // Bin links go through the minor-version link (cpython-3.12-linux-x86_64-gnu).
  const exe = (key: string) => {
    const m = /^cpython-(\d+)\.(\d+)\.\d+(?:(?:a|b|rc)\d+)?(\+[a-z+]+)?-(.*)$/.exec(key)!;
    const t = (m[3] ?? "").includes("freethreaded") ? "t" : "";
    const minor = `cpython-${m[1]}.${m[2]}${m[3] ?? ""}-${m[4]}`;
    return join(dir, minor, "bin", `python${m[1]}.${m[2]}${t}`);
  };
  const real = (key: string) => join(dir, key, "bin", exe(key).split("/").at(-1)!);
  return {
    root,
    dir,
    bin,
    exe,
    async add(key) {
      await Deno.mkdir(join(dir, key, "bin"), { recursive: true });
      await Deno.writeTextFile(real(key), "#!/bin/sh\n");
      // As in every PBS installation: the minor-version link needs bin/python3.
      await Deno.symlink(real(key).split("/").at(-1)!, join(dir, key, "bin", "python3"));
    },
    remove: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test("minorLinkName names python3.X, python3.Xt for free-threaded, nothing for debug", () => {
  assertEquals(minorLinkName("cpython-3.13.9-linux-x86_64-gnu"), "python3.13");
  assertEquals(minorLinkName("cpython-3.13.9+freethreaded-linux-x86_64_v3-gnu"), "python3.13t");
  assertEquals(minorLinkName("cpython-3.14.0rc2-macos-aarch64-none"), "python3.14");
  assertEquals(minorLinkName("cpython-3.13.9+debug-linux-x86_64-gnu"), undefined);
  assertEquals(minorLinkName("cpython-3.13.9+freethreaded+debug-linux-x86_64-gnu"), undefined);
  assertEquals(minorLinkName("not-a-key"), undefined);
});

Deno.test("binDir prefers the flag, then PYPRIME_PYTHON_BIN_DIR, XDG_BIN_HOME, ~/.local/bin", () => {
  withEnv(["PYPRIME_PYTHON_BIN_DIR", "XDG_BIN_HOME", "HOME", "PATH"], () => {
    Deno.env.set("HOME", "/home/u");
    Deno.env.delete("PYPRIME_PYTHON_BIN_DIR");
    Deno.env.delete("XDG_BIN_HOME");
    assertEquals(binDir(), "/home/u/.local/bin");
    Deno.env.set("XDG_BIN_HOME", "/xdg/bin");
    assertEquals(binDir(), "/xdg/bin");
    Deno.env.set("PYPRIME_PYTHON_BIN_DIR", "/env/bin");
    assertEquals(binDir(), "/env/bin");
    assertEquals(binDir("/flag/bin/"), "/flag/bin");
    Deno.env.set("PATH", "/usr/bin::/flag/bin/");
    assert(onPath("/flag/bin"));
    assert(!onPath("/env/bin"));
  });
});

Deno.test("syncLinks links the newest patch of each minor and the free-threaded name", async () => {
  const s = await sandbox();
  const ft = "cpython-3.13.1+freethreaded-linux-x86_64-gnu";
  const dbg = "cpython-3.13.1+debug-linux-x86_64-gnu";
  for (
    const k of ["cpython-3.12.1-linux-x86_64-gnu", "cpython-3.12.10-linux-x86_64-gnu", ft, dbg]
  ) await s.add(k);
  const report = await syncLinks(s.dir, s.bin, {
    installed: ["cpython-3.12.1-linux-x86_64-gnu", ft, dbg],
  });
  // 3.12.10 sorts after 3.12.1 numerically, so it wins although 3.12.1 was just installed.
  const expected = {
    "python3.12": s.exe("cpython-3.12.10-linux-x86_64-gnu"),
    "python3.13t": s.exe(ft),
  };
  assertEquals(report, { linked: expected, removed: [], skipped: [] });
  assertEquals(await links(s.bin), expected);
  // Idempotent: a second run changes nothing.
  assertEquals(await syncLinks(s.dir, s.bin, { installed: [ft] }), {
    linked: {},
    removed: [],
    skipped: [],
  });
  await s.remove();
});

Deno.test("syncLinks leaves files it did not create alone unless forced", async () => {
  const s = await sandbox();
  const key = "cpython-3.12.1-linux-x86_64-gnu";
  await s.add(key);
  await Deno.mkdir(s.bin);
  await Deno.writeTextFile(join(s.bin, "python3.12"), "mine");
  await Deno.symlink("/usr/bin/python3", join(s.bin, "python3"));
  const kept = await syncLinks(s.dir, s.bin, { installed: [key], defaultKey: key });
  assertEquals(kept.skipped.sort(), ["python3", "python3.12"]);
  assertEquals(kept.linked, { python: s.exe(key) });
  assertEquals(await links(s.bin), {
    python: s.exe(key),
    python3: "/usr/bin/python3",
    "python3.12": "<file>",
  });
  const forced = await syncLinks(s.dir, s.bin, { installed: [key], defaultKey: key, force: true });
  assertEquals(Object.keys(forced.linked).sort(), ["python3", "python3.12"]);
  assertEquals(await links(s.bin), {
    python: s.exe(key),
    python3: s.exe(key),
    "python3.12": s.exe(key),
  });
  // No temp links are left beside the real ones.
  assertEquals(await names(s.bin), ["python", "python3", "python3.12"]);
  await s.remove();
});

Deno.test("syncLinks repoints links of a removed patch, python3 included, then removes them", async () => {
  const s = await sandbox();
  const old = "cpython-3.12.0-linux-x86_64-gnu";
  const cur = "cpython-3.12.1-linux-x86_64-gnu";
  await s.add(old);
  await s.add(cur);
  await syncLinks(s.dir, s.bin, { installed: [cur], defaultKey: cur });
  await Deno.writeTextFile(join(s.bin, "python3.11"), "mine");
  await Deno.symlink(join(s.root, "elsewhere", "python"), join(s.bin, "dangling-foreign"));

  await Deno.remove(join(s.dir, cur), { recursive: true });
  const repointed = await syncLinks(s.dir, s.bin);
  assertEquals(repointed.removed, []);
  // The links go through cpython-3.12-…, which now points at the older patch: the
  // bin links themselves need no change.
  assertEquals(repointed.linked, {});
  assertEquals(await Deno.readLink(join(s.dir, "cpython-3.12-linux-x86_64-gnu")), old);
  assertEquals(await links(s.bin), {
    "dangling-foreign": join(s.root, "elsewhere", "python"),
    python: s.exe(old),
    python3: s.exe(old),
    "python3.11": "<file>",
    "python3.12": s.exe(old),
  });

  await Deno.remove(join(s.dir, old), { recursive: true });
  const removed = await syncLinks(s.dir, s.bin);
  assertEquals(removed.removed.sort(), ["python", "python3", "python3.12"]);
  assertEquals(await names(s.bin), ["dangling-foreign", "python3.11"]);
  await s.remove();
});

Deno.test("syncLinks with nothing to link creates no bin dir", async () => {
  const s = await sandbox();
  assertEquals(await syncLinks(s.dir, s.bin), { linked: {}, removed: [], skipped: [] });
  await Deno.stat(s.bin).then(() => assert(false, "bin dir created"), () => {});
  await s.remove();
});

// ---------------------------------------------------------------------------------
// The CLI.

interface Home {
  home: string;
  dir: string;
  bin: string;
  remove(): Promise<void>;
}

async function home(): Promise<Home> {
  const h = await Deno.realPath(await Deno.makeTempDir({ prefix: "pyprime-bin-" }));
  return {
    home: h,
    dir: join(h, "pythons"),
    bin: join(h, "bin"),
    remove: () => Deno.remove(h, { recursive: true }),
  };
}

function cli(h: Home, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { env: { HOME: h.home, ...env } });
}

/** Installs the fixture archive (no network, no bytecode). */
function install(h: Home, ...args: string[]): Promise<CliResult> {
  return cli(h, ["install", fx.zst, "--install-dir", h.dir, "--no-compile-bytecode", ...args]);
}

async function runLink(path: string): Promise<string> {
  const out = await new Deno.Command(path, {
    args: ["-I", "-c", "import sys; print(sys.prefix)"],
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

/** Copies an installation under another key (hard links: fast, same bytes). */
async function fakePatch(h: Home, key: string): Promise<void> {
  const out = await new Deno.Command("cp", {
    args: ["-a", "-l", join(h.dir, KEY), join(h.dir, key)],
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** Where a bin link points: through the key's minor-version link. */
function exe(h: Home, key: string): string {
  return join(h.dir, minorDirName(key)!, "bin", MINOR);
}

Deno.test("install links python3.X into --bin-dir and warns when it is not on PATH", async () => {
  const h = await home();
  const r = await install(h, "--bin-dir", h.bin);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await links(h.bin), { [MINOR]: exe(h, KEY) });
  assertEquals(await runLink(join(h.bin, MINOR)), join(h.dir, minorDirName(KEY)!));
  assertMatch(
    r.stderr,
    re(`warning: ${h.bin} is not on PATH\nhint: add it: export PATH="${h.bin}:$PATH"`),
  );
  // Nothing in the default bin dir.
  assertEquals(await names(join(h.home, ".local")), []);
  await h.remove();
});

Deno.test("install with PYPRIME_PYTHON_BIN_DIR on PATH and --default links python3 and python, no warning", async () => {
  const h = await home();
  const env = { PYPRIME_PYTHON_BIN_DIR: h.bin, PATH: `${h.bin}:${Deno.env.get("PATH")}` };
  const r = await cli(h, [
    "install",
    fx.zst,
    "--install-dir",
    h.dir,
    "--no-compile-bytecode",
    "--default",
  ], env);
  assertEquals(r.code, 0, r.stderr);
  assertNotMatch(r.stderr, /warning/);
  assertEquals(await links(h.bin), {
    python: exe(h, KEY),
    python3: exe(h, KEY),
    [MINOR]: exe(h, KEY),
  });
  assertEquals(await runLink(join(h.bin, "python")), join(h.dir, minorDirName(KEY)!));
  const dirBin = await cli(h, ["dir", "--bin"], env);
  assertEquals(dirBin.stdout, `${h.bin}\n`);
  await h.remove();
});

Deno.test("install links into ~/.local/bin by default, XDG_BIN_HOME when set; --no-bin links nothing", async () => {
  const h = await home();
  const none = await install(h, "--no-bin");
  assertEquals(none.code, 0, none.stderr);
  assertNotMatch(none.stderr, /warning/);
  assertEquals(await names(join(h.home, ".local")), []);

  const local = join(h.home, ".local", "bin");
  const byDefault = await install(h, "--reinstall");
  assertEquals(byDefault.code, 0, byDefault.stderr);
  assertEquals(await links(local), { [MINOR]: exe(h, KEY) });
  assertEquals((await cli(h, ["dir", "--bin"])).stdout, `${local}\n`);

  const xdg = join(h.home, "xdg-bin");
  const viaXdg = await cli(h, [
    "install",
    fx.zst,
    "--install-dir",
    h.dir,
    "--no-compile-bytecode",
    "--reinstall",
  ], { XDG_BIN_HOME: xdg });
  assertEquals(viaXdg.code, 0, viaXdg.stderr);
  assertEquals(await links(xdg), { [MINOR]: exe(h, KEY) });
  const json = await cli(h, ["--json", "dir", "--bin"], { XDG_BIN_HOME: xdg });
  assertEquals(JSON.parse(json.stdout), { binDir: xdg });
  await h.remove();
});

Deno.test("install leaves a python3.X it did not create alone, with a hint, unless --force", async () => {
  const h = await home();
  await Deno.mkdir(h.bin);
  const mine = join(h.bin, MINOR);
  await Deno.writeTextFile(mine, "#!/bin/sh\necho mine\n");
  const kept = await install(h, "--bin-dir", h.bin);
  assertEquals(kept.code, 0, kept.stderr);
  assertMatch(
    kept.stderr,
    re(`warning: ${mine} exists and was not created by pyprime; left alone\nhint: pass --force`),
  );
  assertNotMatch(kept.stderr, /is not on PATH/, "nothing was linked, so no PATH advice");
  assertEquals(await Deno.readTextFile(mine), "#!/bin/sh\necho mine\n");

  // --force on an installation that is already there still links it.
  const forced = await install(h, "--bin-dir", h.bin, "--force");
  assertEquals(forced.code, 0, forced.stderr);
  assertMatch(forced.stderr, /already installed/);
  assertEquals(await links(h.bin), { [MINOR]: exe(h, KEY) });
  await h.remove();
});

Deno.test("install points python3.X at the newest installed patch; uninstall repoints, then removes", async () => {
  const h = await home();
  const env = { PYPRIME_PYTHON_BIN_DIR: h.bin };
  const first = await cli(h, [
    "install",
    fx.zst,
    "--install-dir",
    h.dir,
    "--no-compile-bytecode",
    "--default",
  ], env);
  assertEquals(first.code, 0, first.stderr);
  await fakePatch(h, LOWER);
  await fakePatch(h, HIGHER);
  await Deno.writeTextFile(join(h.bin, `python${MAJOR_N}.${MINOR_N - 1}`), "mine");

  // Reinstalling the middle patch: the minor link goes to the newest one installed.
  const again = await install(h, "--reinstall", "--bin-dir", h.bin);
  assertEquals(again.code, 0, again.stderr);
  assertEquals((await links(h.bin))[MINOR], exe(h, HIGHER));
  assertEquals((await links(h.bin)).python3, exe(h, KEY));

  const dropHigh = await cli(h, ["uninstall", HIGHER, "--install-dir", h.dir], env);
  assertEquals(dropHigh.code, 0, dropHigh.stderr);
  assertEquals(await links(h.bin), {
    python: exe(h, KEY),
    python3: exe(h, KEY),
    [`python${MAJOR_N}.${MINOR_N - 1}`]: "<file>",
    [MINOR]: exe(h, KEY),
  });

  const dropCur = await cli(h, [
    "--json",
    "uninstall",
    KEY,
    "--install-dir",
    h.dir,
    "--bin-dir",
    h.bin,
  ]);
  assertEquals(dropCur.code, 0, dropCur.stderr);
  assertEquals(JSON.parse(dropCur.stdout).removed, [KEY]);
  assertEquals(await links(h.bin), {
    python: exe(h, LOWER),
    python3: exe(h, LOWER),
    [`python${MAJOR_N}.${MINOR_N - 1}`]: "<file>",
    [MINOR]: exe(h, LOWER),
  });
  assertEquals(await runLink(join(h.bin, MINOR)), join(h.dir, minorDirName(LOWER)!));

  const all = await cli(h, ["uninstall", "--all", "--install-dir", h.dir], env);
  assertEquals(all.code, 0, all.stderr);
  assertEquals(await links(h.bin), { [`python${MAJOR_N}.${MINOR_N - 1}`]: "<file>" });
  assertEquals(await names(h.dir), [".lock", ".staging"]);
  await h.remove();
});

Deno.test("syncLinks leaves a user's own links into a removed installation alone", async () => {
  const root = await Deno.makeTempDir();
  const installs = join(root, "pythons");
  const bin = join(root, "bin");
  await Deno.mkdir(join(installs, "cpython-3.12.0-linux-x86_64-gnu", "bin"), { recursive: true });
  await Deno.writeTextFile(
    join(installs, "cpython-3.12.0-linux-x86_64-gnu", "bin", "python3.12"),
    "",
  );
  await Deno.symlink(
    "python3.12",
    join(installs, "cpython-3.12.0-linux-x86_64-gnu", "bin", "python3"),
  );
  await Deno.mkdir(bin);
  const gone = join(installs, "cpython-3.12.1-linux-x86_64-gnu", "bin");
  await Deno.symlink(join(gone, "pip3.12"), join(bin, "pip3.12"));
  await Deno.symlink(join(gone, "python3.12"), join(bin, "python3.12"));
  const report = await syncLinks(installs, bin);
  assertEquals(await Deno.readLink(join(bin, "pip3.12")), join(gone, "pip3.12"));
  // An old-style link to the removed patch is repointed through the minor link.
  assertEquals(
    await Deno.readLink(join(bin, "python3.12")),
    join(installs, "cpython-3.12-linux-x86_64-gnu", "bin", "python3.12"),
  );
  assertEquals(report.removed, []);
  await Deno.remove(root, { recursive: true });
});

Deno.test("syncLinks keeps python3.X on this platform when another platform has a newer patch", async () => {
  const root = await Deno.makeTempDir();
  const installs = join(root, "pythons");
  const bin = join(root, "bin");
  for (const key of ["cpython-3.12.1-linux-x86_64-gnu", "cpython-3.12.9-linux-aarch64-gnu"]) {
    await Deno.mkdir(join(installs, key, "bin"), { recursive: true });
    await Deno.writeTextFile(join(installs, key, "bin", "python3.12"), "");
    await Deno.symlink("python3.12", join(installs, key, "bin", "python3"));
  }
  await syncLinks(installs, bin, { installed: ["cpython-3.12.1-linux-x86_64-gnu"] });
  const ours = join(installs, "cpython-3.12-linux-x86_64-gnu", "bin", "python3.12");
  assertEquals(await Deno.readLink(join(bin, "python3.12")), ours);
  await syncLinks(installs, bin); // a later sync (e.g. after an uninstall) keeps it too
  assertEquals(await Deno.readLink(join(bin, "python3.12")), ours);
  await Deno.remove(root, { recursive: true });
});
