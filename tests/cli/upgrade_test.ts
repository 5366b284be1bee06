/**
 * `pyprime upgrade` across two real patch releases of CPython 3.13 (Debian trixie's and
 * sid's, built as PBS archives), and across two PBS build tags of one archive (a
 * rebuild); the minor-version link moves atomically while a process started from the
 * old patch keeps running. Installs come from an offline file mirror and a catalog.
 *
 * @module
 */
import { basename, join } from "node:path";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { uvEntry } from "../support/catalog.ts";
import { debianFixtures, fixtures, type FixtureSet } from "../support/fixtures.ts";

const PLATFORM = "linux-x86_64-gnu";

interface Offer {
  set: FixtureSet;
  build: string;
}

/** A mirror folder and a uv-format catalog offering each fixture under a build tag. */
async function market(home: string, offers: Offer[]): Promise<string[]> {
  const mirror = join(home, "mirror");
  const entries: Record<string, unknown> = {};
  for (const { set, build } of offers) {
    const name = basename(set.zst).replace(/\+\d{8}-/, `+${build}-`);
    await Deno.mkdir(join(mirror, build), { recursive: true });
    await Deno.copyFile(set.zst, join(mirror, build, name));
    entries[`cpython-${set.version}-${PLATFORM}-${build}`] = uvEntry({
      version: set.version,
      build,
      file: name,
      sha256: set.sha256[set.zst],
    });
  }
  const catalog = join(home, "catalog.json");
  await Deno.writeTextFile(catalog, JSON.stringify(entries));
  return [
    ...["--catalog", catalog, "--mirror", mirror, "--offline", "--platform", PLATFORM],
    ...["--install-dir", join(home, "pythons"), "--bin-dir", join(home, "bin")],
    "--no-compile-bytecode",
  ];
}

async function version(python: string): Promise<string> {
  const out = await new Deno.Command(python, {
    args: ["-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
    clearEnv: true,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("upgrade moves 3.13.5 to 3.13.18, switches the minor link under a running process, keeps the old patch", async () => {
  const [older, newer] = await Promise.all([
    debianFixtures("3.13", "trixie"),
    debianFixtures("3.13", "sid"),
  ]);
  assert(older.version !== newer.version, `${older.version} vs ${newer.version}`);
  const home = await Deno.makeTempDir({ prefix: "pyprime-upgrade-" });
  const env = { HOME: home };
  try {
    const dir = join(home, "pythons");
    const oldKey = `cpython-${older.version}-${PLATFORM}`;
    const newKey = `cpython-${newer.version}-${PLATFORM}`;
    const minor = `cpython-3.13-${PLATFORM}`;
    const args = await market(home, [{ set: older, build: "20250101" }]);
    const first = await runCli(["install", `cpython-${older.version}`, ...args], { env });
    assertEquals(first.code, 0, first.stderr);
    assertEquals(await Deno.readLink(join(dir, minor)), oldKey);
    assertEquals(
      await Deno.readLink(join(home, "bin", "python3.13")),
      join(dir, minor, "bin", "python3.13"),
    );

    // A long-running process of the old patch, started by its own path.
    const running = new Deno.Command(join(dir, oldKey, "bin", "python3"), {
      args: ["-I", "-c", "import sys; sys.stdin.read(); import json, email.parser; print('alive')"],
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
    }).spawn();

    const both = await market(home, [{ set: older, build: "20250101" }, {
      set: newer,
      build: "20251201",
    }]);
    const up = await runCli(["upgrade", ...both], { env });
    assertEquals(up.code, 0, up.stderr);
    assertMatch(
      up.stderr,
      new RegExp(`Upgrading ${oldKey} to ${newer.version.replaceAll(".", "\\.")}`),
    );
    assertEquals(await Deno.readLink(join(dir, minor)), newKey);
    assertEquals(
      (await Array.fromAsync(Deno.readDir(dir))).filter((e) =>
        e.isDirectory && e.name.startsWith("cpython-")
      ).map((e) => e.name).sort(),
      [newKey, oldKey].sort(),
    );
    assertEquals(await version(join(home, "bin", "python3.13")), newer.version);

    const writer = running.stdin.getWriter();
    await writer.close();
    const { stdout } = await running.output();
    assertEquals(new TextDecoder().decode(stdout).trim(), "alive");

    const stable = await runCli(["find", "3.13", "--install-dir", dir], { env });
    assertEquals(stable.stdout, `${join(dir, minor, "bin", "python3")}\n`);
    const patch = await runCli(["find", "3.13", "--resolve-links", "--install-dir", dir], { env });
    assertEquals(patch.stdout, `${join(dir, newKey, "bin", "python3")}\n`);

    const again = await runCli(["--json", "upgrade", ...both], { env });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(JSON.parse(again.stdout).map((s: { status: string }) => s.status), ["up-to-date"]);

    // --prune: a fresh old install upgraded with --prune leaves only the new patch.
    const pruneArgs = both.map((a) => a === dir ? join(home, "pruned") : a);
    const old2 = await runCli(["install", `cpython-${older.version}`, ...pruneArgs, "--no-bin"], {
      env,
    });
    assertEquals(old2.code, 0, old2.stderr);
    const pruned = await runCli(["upgrade", "--prune", "--no-bin", ...pruneArgs], { env });
    assertEquals(pruned.code, 0, pruned.stderr);
    const left = (await Array.fromAsync(Deno.readDir(join(home, "pruned")))).map((e) => e.name);
    assertEquals(left.filter((n) => n.startsWith("cpython-")).sort(), [minor, newKey].sort());
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("upgrade reinstalls the same version when the catalog has a newer PBS build of it", async () => {
  const fx = await fixtures();
  const home = await Deno.makeTempDir({ prefix: "pyprime-upgrade-" });
  const env = { HOME: home };
  try {
    const dir = join(home, "pythons");
    const key = `cpython-${fx.version}-${PLATFORM}`;
    const first = await runCli([
      "install",
      key,
      ...await market(home, [{ set: fx, build: "20250101" }]),
      "--no-bin",
    ], { env });
    assertEquals(first.code, 0, first.stderr);
    assertMatch(await Deno.readTextFile(join(dir, key, "BUILD")), /^20250101\n/);
    const rebuilt = await market(home, [{ set: fx, build: "20250101" }, {
      set: fx,
      build: "20260601",
    }]);
    // A minor version installed from a file the catalog does not carry is left alone,
    // and does not keep the others from upgrading.
    const other = await debianFixtures(fx.tag === "3.14" ? "3.15" : "3.14");
    const local = await runCli(["install", other.zst, "--install-dir", dir, "--no-bin"], { env });
    assertEquals(local.code, 0, local.stderr);
    const up = await runCli(["--json", "upgrade", "--no-bin", ...rebuilt], { env });
    assertEquals(up.code, 0, up.stderr);
    assertEquals(
      JSON.parse(up.stdout).map((s: { status: string }) => s.status).sort(),
      ["not-in-catalog", "rebuilt"],
    );
    assertMatch(up.stderr, /no 3\.1[45] in the catalog to upgrade to; left as it is/);
    assertMatch(await Deno.readTextFile(join(dir, key, "BUILD")), /^20260601\n/);
    const list = await runCli(["--json", "list", "--only-installed", "--install-dir", dir], {
      env,
    });
    const rows = JSON.parse(list.stdout) as { key: string; build: string }[];
    assertEquals(rows.find((r) => r.key === key)!.build, "20260601");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
