import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { join } from "node:path";
import { fixtures } from "../support/fixtures.ts";
import { runCli } from "../support/cli.ts";

const fx = await fixtures();
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;

async function walk(root: string, keep: (path: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(root)) {
    const p = join(root, e.name);
    if (e.isDirectory) out.push(...await walk(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

async function py(
  python: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(python, {
    args,
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

async function setup() {
  const home = await Deno.makeTempDir({ prefix: "pyprime-bc-" });
  const dir = join(home, "pythons");
  const install = (...args: string[]) =>
    runCli(["install", fx.zst, "--install-dir", dir, "--no-bin", ...args], { env: { HOME: home } });
  return {
    home,
    dir,
    install,
    root: join(dir, KEY),
    stdlib: join(dir, KEY, "lib", `python${fx.tag}`),
  };
}

Deno.test("install compiles every stdlib .py in staging, revokes the network first, and imports write nothing", async () => {
  const { home, install, root, stdlib } = await setup();
  const r = await install("--json");
  assertEquals(r.code, 0, r.stderr);
  const [outcome] = JSON.parse(r.stdout);
  assertEquals(outcome.revoked, ["net"]);
  assertEquals(outcome.bytecode.failed, []);
  assertMatch(r.stderr, /^Bytecode compiled [\d,]+ files in \d+\.\d\ds$/m);

  const sources = await walk(stdlib, (p) => p.endsWith(".py"));
  const pycs = new Set(await walk(stdlib, (p) => p.endsWith(".pyc")));
  assertEquals(outcome.bytecode.compiled, sources.length);
  const missing = (await py(join(root, "bin", "python3"), [
    "-I",
    "-c",
    "import importlib.util, os, sys\n" +
    "for p in sys.argv[1:]:\n    c = importlib.util.cache_from_source(p)\n" +
    "    os.path.exists(c) or print(p)",
    ...sources,
  ])).out.trim();
  assertEquals(missing, "", "sources without a .pyc");
  assertEquals(pycs.size, sources.length);

  // Importing reads the cached files and writes nothing, even without -B.
  const before = await Promise.all(
    [...pycs].map(async (p) => [p, (await Deno.stat(p)).mtime!.getTime()]),
  );
  const imports =
    "import asyncio, json, email.parser, http.client, decimal, typing, logging, argparse";
  const run = await py(join(root, "bin", "python3"), ["-I", "-X", "importtime", "-c", imports]);
  assertEquals(run.code, 0, run.err);
  const after = await Promise.all(
    [...pycs].map(async (p) => [p, (await Deno.stat(p)).mtime!.getTime()]),
  );
  assertEquals(after, before);
  assertEquals(new Set(await walk(stdlib, (p) => p.endsWith(".pyc"))), pycs);
  await Deno.remove(home, { recursive: true });
});

Deno.test("compiled bytecode records the final path, never the staging folder", async () => {
  const { home, install, root, stdlib } = await setup();
  assertEquals((await install()).code, 0);
  const pyc = join(stdlib, "json", "__pycache__", `decoder.cpython-${fx.tag.replace(".", "")}.pyc`);
  const read = await py(join(root, "bin", "python3"), [
    "-I",
    "-c",
    "import marshal, sys; print(marshal.loads(open(sys.argv[1], 'rb').read()[16:]).co_filename)",
    pyc,
  ]);
  assertEquals(read.out.trim(), join(stdlib, "json", "decoder.py"));
  const trace = await py(join(root, "bin", "python3"), [
    "-I",
    "-c",
    "import json; json.loads('{')",
  ]);
  assertMatch(
    trace.err,
    new RegExp(`File "${join(stdlib, "json", "decoder.py").replaceAll(".", "\\.")}"`),
  );
  const leaked = [];
  for (const p of await walk(stdlib, (p) => p.endsWith(".pyc"))) {
    if (new TextDecoder("latin1").decode(await Deno.readFile(p)).includes(".staging")) {
      leaked.push(p);
    }
  }
  assertEquals(leaked, []);
  await Deno.remove(home, { recursive: true });
});

Deno.test("installing the same archive twice yields byte-identical .pyc files whatever --jobs is", async () => {
  const { home, dir, install, stdlib } = await setup();
  const snapshot = async () => {
    const files = await walk(stdlib, (p) => p.endsWith(".pyc"));
    return new Map(await Promise.all(files.map(async (p) => [p, await Deno.readFile(p)] as const)));
  };
  assertEquals((await install("--jobs", "1")).code, 0);
  const first = await snapshot();
  assertEquals(
    (await runCli(["uninstall", KEY, "--install-dir", dir], { env: { HOME: home } })).code,
    0,
  );
  assertEquals((await install("--jobs", "2")).code, 0);
  const second = await snapshot();
  assertEquals([...second.keys()], [...first.keys()]);
  const differ = [...first].filter(([p, bytes]) => {
    const other = second.get(p)!;
    return other.length !== bytes.length || other.some((b, i) => b !== bytes[i]);
  }).map(([p]) => p);
  assertEquals(differ, []);
  await Deno.remove(home, { recursive: true });
});

Deno.test("install ignores PYTHONPATH and PYTHONDONTWRITEBYTECODE of the caller", async () => {
  const { home, install, stdlib } = await setup();
  const poison = join(home, "poison");
  await Deno.mkdir(join(poison, "json"), { recursive: true });
  await Deno.writeTextFile(join(poison, "json", "__init__.py"), "raise SystemExit('poisoned')\n");
  const r = await runCli(
    ["install", fx.zst, "--install-dir", join(home, "pythons"), "--no-bin", "--json"],
    { env: { HOME: home, PYTHONPATH: poison, PYTHONDONTWRITEBYTECODE: "1", PYTHONOPTIMIZE: "2" } },
  );
  assertEquals(r.code, 0, r.stderr);
  assert((await walk(stdlib, (p) => p.endsWith(".pyc"))).length > 100);
  assertEquals((await walk(stdlib, (p) => p.includes(".opt-"))).length, 0);
  void install;
  await Deno.remove(home, { recursive: true });
});

Deno.test("--no-compile-bytecode and PYPRIME_COMPILE_BYTECODE=0 skip compilation; compile catches up later", async () => {
  const { home, dir, root, stdlib } = await setup();
  const off = await runCli(["install", fx.gz, "--install-dir", dir, "--no-bin"], {
    env: { HOME: home, PYPRIME_COMPILE_BYTECODE: "0" },
  });
  assertEquals(off.code, 0, off.stderr);
  assertEquals((await walk(stdlib, (p) => p.endsWith(".pyc"))).length, 0);
  const c = await runCli(["compile", root, "--optimize", "0,1", "--json"], { env: { HOME: home } });
  assertEquals(c.code, 0, c.stderr);
  const report = JSON.parse(c.stdout);
  const sources = await walk(stdlib, (p) => p.endsWith(".py"));
  assertEquals(report.failed, []);
  assertEquals((await walk(stdlib, (p) => p.endsWith(".opt-1.pyc"))).length, sources.length);
  await Deno.remove(home, { recursive: true });
});

Deno.test("a full-layout archive's bad-syntax file is reported, not fatal", async () => {
  const { home, dir } = await setup();
  const r = await runCli([
    "install",
    fx.full,
    "--install-dir",
    dir,
    "--no-bin",
    "--verbose",
    "--json",
  ], {
    env: { HOME: home },
  });
  assertEquals(r.code, 0, r.stderr);
  const [outcome] = JSON.parse(r.stdout);
  assertEquals(outcome.bytecode.failed.length, 1);
  assertMatch(outcome.bytecode.failed[0].path, /bad_syntax\.py$/);
  assertMatch(r.stderr, /Bytecode compiled [\d,]+ files in \d+\.\d\ds, 1 failed/);
  assertMatch(r.stderr, /failed: .*bad_syntax\.py/);
  await Deno.remove(home, { recursive: true });
});

Deno.test("--verbose and --json name the final installation path of a failed file, never .staging", async () => {
  const { home, dir } = await setup();
  const r = await runCli(["install", fx.full, "--install-dir", dir, "--no-bin", "-v", "--json"], {
    env: { HOME: home },
  });
  assertEquals(r.code, 0, r.stderr);
  const [outcome] = JSON.parse(r.stdout);
  const failed: string = outcome.bytecode.failed[0].path;
  assert(failed.startsWith(`${outcome.path}/`), failed);
  assert(!r.stdout.includes("/.staging/"), r.stdout);
  assert(!r.stderr.includes("/.staging/"), r.stderr);
  await Deno.remove(home, { recursive: true });
});

Deno.test("SOURCE_DATE_EPOCH makes checked-hash the default invalidation mode", async () => {
  const { home, dir, stdlib } = await setup();
  const r = await runCli(["install", fx.zst, "--install-dir", dir, "--no-bin"], {
    env: { HOME: home, SOURCE_DATE_EPOCH: "1700000000" },
  });
  assertEquals(r.code, 0, r.stderr);
  const pyc = await Deno.readFile(
    join(stdlib, "__pycache__", `os.cpython-${fx.tag.replace(".", "")}.pyc`),
  );
  assertEquals(new DataView(pyc.buffer).getUint32(4, true), 0b11);
  await Deno.remove(home, { recursive: true });
});
