import { assert, assertEquals, assertMatch, assertNotMatch } from "../support/assert.ts";
import { join } from "node:path";
import { fixtures } from "../support/fixtures.ts";
import { cliCommand, runCli } from "../support/cli.ts";
import { listTree } from "../support/helpers.ts";

const fx = await fixtures();

async function tempHome(): Promise<{ home: string; dir: string }> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-home-" });
  return { home, dir: join(home, "pythons") };
}

async function python(path: string, code: string): Promise<Deno.CommandOutput> {
  return await new Deno.Command(path, {
    args: ["-I", "-B", "-c", code],
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

function decode(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Installs into `dir` with no executables linked (those have their own tests). */
function install(dir: string, home: string, ...args: string[]) {
  return runCli(["install", "--install-dir", dir, "--no-bin", ...args], { env: { HOME: home } });
}

Deno.test("install puts a .tar.gz in place and its interpreter imports the stdlib", async () => {
  const { home, dir } = await tempHome();
  const r = await install(dir, home, fx.gz, "--no-compile-bytecode");
  assertEquals(r.code, 0, r.stderr);
  const key = `cpython-${fx.version}-linux-x86_64-gnu`;
  const root = join(dir, key);
  assertEquals(r.stdout.trim(), join(root, "bin", "python3"));
  assertMatch(r.stderr, new RegExp(`Installed ${key.replaceAll(".", "\\.")}`));

  const modules = fx.modules.join(", ");
  const run = await python(
    join(root, "bin", "python3"),
    `import ${modules}; import sys; print(sys.prefix)`,
  );
  assertEquals(decode(run.stderr), "");
  assertEquals(decode(run.stdout).trim(), root);

  // python3 is a relative symlink to pythonX.Y, which is executable.
  assertEquals(await Deno.readLink(join(root, "bin", "python3")), `python${fx.tag}`);
  const mode = (await Deno.stat(join(root, "bin", `python${fx.tag}`))).mode! & 0o7777;
  assertEquals(mode, 0o755);
  // mtimes come from the archive (the source tree), not the time of extraction.
  const src = await Deno.stat(join(fx.stdlibSource, "os.py"));
  const dst = await Deno.stat(join(root, "lib", `python${fx.tag}`, "os.py"));
  assertEquals(Math.floor(dst.mtime!.getTime() / 1000), Math.floor(src.mtime!.getTime() / 1000));
  // Nothing else appeared in HOME, and no staging leftovers.
  assertEquals(await listTree(home).then((t) => t.filter((p) => !p.startsWith("pythons/"))), [
    "pythons",
  ]);
  assertEquals(await listTree(join(dir, ".staging")), []);
  // No bytecode was written with --no-compile-bytecode.
  assert(!(await listTree(root)).some((p) => p.endsWith(".pyc")));
  await Deno.remove(home, { recursive: true });
});

Deno.test("install reads .tar.zst, full-layout and stdin archives to the same key", async () => {
  const { home, dir } = await tempHome();
  const zst = await install(dir, home, fx.zst, "--no-compile-bytecode", "--json");
  assertEquals(zst.code, 0, zst.stderr);
  const [outcome] = JSON.parse(zst.stdout);
  assertEquals(outcome.format, "zstd");
  assertEquals(outcome.status, "installed");
  assertEquals(outcome.sha256, fx.sha256[fx.zst]);

  const full = await install(dir, home, fx.full, "--no-compile-bytecode", "--reinstall", "--json");
  assertEquals(full.code, 0, full.stderr);
  assertEquals(JSON.parse(full.stdout)[0].status, "reinstalled");
  const root = outcome.path as string;
  const top = (await Array.fromAsync(Deno.readDir(root))).map((e) => e.name).sort();
  assert(
    !top.includes("PYTHON.json") && !top.includes("build") && !top.includes("install"),
    top.join(),
  );
  assert(top.includes("bin") && top.includes("lib"), top.join());

  const stdin = await runCli(
    [
      "install",
      "--install-dir",
      dir,
      "--no-bin",
      "-",
      "--no-compile-bytecode",
      "--reinstall",
      "--json",
    ],
    { env: { HOME: home }, stdin: fx.gz },
  );
  assertEquals(stdin.code, 0, stdin.stderr);
  assertEquals(JSON.parse(stdin.stdout)[0].format, "gzip");
  assertEquals(JSON.parse(stdin.stdout)[0].key, outcome.key);
  const run = await python(outcome.python, "import json; print(json.dumps([1]))");
  assertEquals(decode(run.stdout).trim(), "[1]");
  await Deno.remove(home, { recursive: true });
});

Deno.test("install rewrites the /install build prefix in sysconfig data to the final path", async () => {
  const { home, dir } = await tempHome();
  const r = await install(dir, home, fx.gz, "--no-compile-bytecode", "--json");
  assertEquals(r.code, 0, r.stderr);
  const { path, python: py } = JSON.parse(r.stdout)[0];
  const run = await python(py, "import sysconfig; print(sysconfig.get_config_var('prefix'))");
  assertEquals(decode(run.stdout).trim(), path);
  const libdir = join(path, "lib", `python${fx.tag}`);
  const data = (await Array.fromAsync(Deno.readDir(libdir))).find((e) =>
    e.name.startsWith("_sysconfigdata_")
  );
  assert(data, "no _sysconfigdata_*.py");
  const text = await Deno.readTextFile(join(libdir, data.name));
  assertNotMatch(text, /'\/install[/']/);
  await Deno.remove(home, { recursive: true });
});

Deno.test("install says already installed and exits 0 when the key exists", async () => {
  const { home, dir } = await tempHome();
  assertEquals((await install(dir, home, fx.gz, "--no-compile-bytecode")).code, 0);
  const marker = join(dir, `cpython-${fx.version}-linux-x86_64-gnu`, "marker");
  await Deno.writeTextFile(marker, "x");
  const again = await install(dir, home, fx.zst, "--no-compile-bytecode");
  assertEquals(again.code, 0, again.stderr);
  assertMatch(again.stderr, /already installed/);
  assert(await Deno.stat(marker), "the existing installation was replaced");
  const re = await install(dir, home, fx.zst, "--no-compile-bytecode", "--reinstall");
  assertEquals(re.code, 0, re.stderr);
  assertMatch(re.stderr, /Reinstalled/);
  await Deno.stat(marker).then(() => assert(false, "reinstall kept the old tree"), () => {});
  await Deno.remove(home, { recursive: true });
});

Deno.test("install fails on a checksum mismatch and leaves nothing behind", async () => {
  const { home, dir } = await tempHome();
  const wrong = "0".repeat(64);
  const r = await install(dir, home, fx.gz, "--no-compile-bytecode", "--sha256", wrong);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, new RegExp(`expected sha256 ${wrong}, got ${fx.sha256[fx.gz]}`));
  assertEquals((await listTree(dir)).filter((p) => p !== ".lock"), [".staging"]);
  const ok = await install(dir, home, fx.gz, "--no-compile-bytecode", "--sha256", fx.sha256[fx.gz]);
  assertEquals(ok.code, 0, ok.stderr);
  await Deno.remove(home, { recursive: true });
});

Deno.test("install rejects corrupt archives with a one-line error and keeps the previous install", async () => {
  const { home, dir } = await tempHome();
  assertEquals((await install(dir, home, fx.gz, "--no-compile-bytecode")).code, 0);
  const before = await listTree(dir);
  const bytes = await Deno.readFile(fx.zst);
  const cases: [string, Uint8Array, RegExp][] = [
    ["truncated.tar.zst", bytes.subarray(0, bytes.length >> 1), /truncated\.tar\.zst/],
    ["garbage.tar.gz", new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), /garbage/],
    ["empty.tar.gz", new Uint8Array(), /empty/],
    ["notes.txt", new TextEncoder().encode("hello\n".repeat(200)), /notes\.txt/],
  ];
  for (const [name, data, pattern] of cases) {
    const path = join(home, name);
    await Deno.writeFile(path, data);
    const r = await install(dir, home, path, "--no-compile-bytecode", "--reinstall");
    assertEquals(r.code, 1, `${name}: ${r.stderr}`);
    const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assertEquals(errorLines.length, 1, r.stderr);
    assertMatch(errorLines[0], pattern);
    assertEquals(await listTree(dir), before, name);
  }
  const py = join(dir, `cpython-${fx.version}-linux-x86_64-gnu`, "bin", "python3");
  assertEquals((await python(py, "print(42)")).code, 0);
  await Deno.remove(home, { recursive: true });
});

Deno.test("install of an archive without python/bin/python3 fails cleanly", async () => {
  const { home, dir } = await tempHome();
  const { packTar } = await import("modern-tar");
  const tar = await packTar([
    { header: { name: "python/lib/readme.txt", size: 2 }, body: "hi" },
  ]);
  const path = join(home, "nopython.tar");
  await Deno.writeFile(path, tar);
  const r = await install(dir, home, path, "--no-compile-bytecode");
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /nopython\.tar: no python\/bin\/python3/);
  assertEquals(await listTree(join(dir, ".staging")), []);
  await Deno.remove(home, { recursive: true });
});

Deno.test("two concurrent installs into one dir both succeed and install once", async () => {
  const { home, dir } = await tempHome();
  const [a, b] = await Promise.all([
    install(dir, home, fx.gz, "--no-compile-bytecode", "--json"),
    install(dir, home, fx.zst, "--no-compile-bytecode", "--json"),
  ]);
  assertEquals([a.code, b.code], [0, 0], a.stderr + b.stderr);
  const statuses = [JSON.parse(a.stdout)[0].status, JSON.parse(b.stdout)[0].status].sort();
  assertEquals(statuses, ["already-installed", "installed"]);
  assertEquals(await listTree(join(dir, ".staging")), []);
  await Deno.remove(home, { recursive: true });
});

Deno.test("install removes staging folders left by a killed run", async () => {
  const { home, dir } = await tempHome();
  await Deno.mkdir(join(dir, ".staging", "dead-run", "lib"), { recursive: true });
  await Deno.writeTextFile(join(dir, ".staging", "dead-run", "lib", "x.py"), "");
  const r = await install(dir, home, fx.gz, "--no-compile-bytecode");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await listTree(join(dir, ".staging")), []);
  await Deno.remove(home, { recursive: true });
});

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`install stopped by ${signal} removes its staging folder and exits ${code}`, async () => {
    const { home, dir } = await tempHome();
    const cmd = await cliCommand(
      ["install", "--install-dir", dir, "--no-bin", "-", "--no-compile-bytecode"],
      { env: { HOME: home } },
      "piped",
    );
    const child = cmd.spawn();
    const writer = child.stdin.getWriter();
    const bytes = await Deno.readFile(fx.gz);
    await writer.write(bytes.subarray(0, bytes.length >> 2));
    // Wait until the install is under way (a staging folder exists), then signal.
    const staging = join(dir, ".staging");
    for (let i = 0; i < 200; i++) {
      const names = await listTree(staging).catch(() => []);
      if (names.some((n) => n.includes("/"))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill(signal);
    await writer.close().catch(() => {});
    const out = await child.output();
    assertEquals(out.code, code, decode(out.stderr));
    assertEquals(await listTree(staging), []);
    assertEquals((await listTree(dir)).filter((p) => p !== ".lock"), [".staging"]);
    await Deno.remove(home, { recursive: true });
  });
}

Deno.test("list, find, uninstall and dir work on installed keys", async () => {
  const { home, dir } = await tempHome();
  const cli = (...args: string[]) =>
    runCli([...args, "--install-dir", dir], { env: { HOME: home } });
  assertEquals((await install(dir, home, fx.gz, "--no-compile-bytecode")).code, 0);
  const key = `cpython-${fx.version}-linux-x86_64-gnu`;
  const python3 = join(dir, key, "bin", "python3");
  const list = await cli("list", "--only-installed", "--json");
  const rows = JSON.parse(list.stdout);
  assertEquals(
    rows.map((
      r: { key: string; path: string; status: string; build: string },
    ) => [r.key, r.path, r.status, r.build]),
    [[key, python3, "installed", "local"]],
  );
  const text = await cli("list", "--only-installed");
  assertEquals(text.stdout, `${key}  ${python3}\n`);
  // find prints the path through the minor-version link, which survives upgrades.
  const stable = join(dir, `cpython-${fx.tag}-linux-x86_64-gnu`, "bin", "python3");
  for (const request of [key, fx.tag, fx.version, `>=${fx.tag},<4`, `cpython-${fx.version}`]) {
    const find = await cli("find", request);
    assertEquals([find.code, find.stdout], [0, stable + "\n"], request);
  }
  const missing = await cli("find", "cpython-2.7.18-linux-x86_64-gnu");
  assertEquals([missing.code, missing.stdout], [1, ""]);
  assertMatch(missing.stderr, /No installed Python matches/);
  const where = await runCli(["dir"], { env: { PYPRIME_PYTHON_INSTALL_DIR: dir } });
  assertEquals(where.stdout, dir + "\n");
  const xdg = await runCli(["dir"], { env: { XDG_DATA_HOME: "/tmp/xdg" } });
  assertEquals(xdg.stdout, "/tmp/xdg/pyprime/python\n");
  const un = await cli("uninstall", fx.tag);
  assertEquals(un.code, 0, un.stderr);
  assertEquals((await cli("list", "--only-installed")).stdout, "");
  const again = await cli("uninstall", key);
  assertEquals(again.code, 1);
  await Deno.remove(home, { recursive: true });
});

Deno.test({
  name: "install handles a genuine PBS archive from PYPRIME_TEST_ARCHIVE",
  ignore: fx.real === undefined,
  async fn() {
    const { home, dir } = await tempHome();
    const r = await install(dir, home, fx.real!, "--json");
    assertEquals(r.code, 0, r.stderr);
    const { python: py } = JSON.parse(r.stdout)[0];
    const run = await python(py, "import json, asyncio, ssl, sqlite3, decimal; print('ok')");
    assertEquals(decode(run.stdout).trim(), "ok", decode(run.stderr));
    await Deno.remove(home, { recursive: true });
  },
});

Deno.test("a reinstall killed between its renames is finished by the next run", async () => {
  const { home, dir } = await tempHome();
  assertEquals((await install(dir, home, fx.gz, "--no-compile-bytecode")).code, 0);
  const key = `cpython-${fx.version}-linux-x86_64-gnu`;
  // What a kill after "move the old one aside" leaves: the key missing, the old tree aside.
  await Deno.rename(join(dir, key), join(dir, `.${key}.previous`));
  const other = await runCli(
    ["uninstall", "cpython-2.7.18-linux-x86_64-gnu", "--install-dir", dir],
    {
      env: { HOME: home },
    },
  );
  assertEquals(other.code, 1); // nothing matched, but the locked run recovered the install
  assertEquals(
    (await listTree(dir)).filter((p) => !p.includes("/")),
    [".lock", ".staging", `cpython-${fx.tag}-linux-x86_64-gnu`, key],
  );
  assertEquals((await python(join(dir, key, "bin", "python3"), "print(1)")).code, 0);
  await Deno.remove(home, { recursive: true });
});
