/**
 * Every CPython of the test matrix (the fixtures' own, Debian's 3.14 and 3.15) goes
 * through the same checks: install from gz, zst and stdin, the key, links, sysconfig
 * rewrite and probe, `pyprime compile`, reproducible bytecode, and what differs from a
 * fresh `py_compile` run.
 */
import { assert, assertEquals, assertMatch, assertNotMatch } from "../support/assert.ts";
import { dirname, join } from "node:path";
import { debianFixtures, fixtures, type FixtureSet } from "../support/fixtures.ts";
import { runCli } from "../support/cli.ts";
import { comparePycs, type PycDifference } from "../support/pyc_compare.ts";
import { compileTree } from "../../src/bytecode/pool.ts";

const MATRIX: [string, () => Promise<FixtureSet>][] = [
  ["fixtures' CPython", () => fixtures()],
  ["CPython 3.14", () => debianFixtures("3.14")],
  ["CPython 3.15", () => debianFixtures("3.15")],
];

/**
 * What a `.pyc` may differ from a fresh `py_compile` in (see src/bytecode/worker.ts):
 * marshal flags and sharing that unmarshal to equal code objects. Never `code`/`header`.
 */
const HARMLESS = new Set(["interning", "frozenset-sharing", "constant-sharing", "ref-flag"]);

async function py(python: string, code: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(python, {
    args: ["-I", "-B", "-c", code],
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout).trim() };
}

async function pycs(root: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".pyc")) out.set(p.slice(root.length), await Deno.readFile(p));
    }
  };
  await walk(root);
  return out;
}

async function removePycaches(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory) continue;
    const p = join(dir, e.name);
    if (e.name === "__pycache__") await Deno.remove(p, { recursive: true });
    else await removePycaches(p);
  }
}

function differing(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => {
    const x = a.get(k), y = b.get(k);
    return !x || !y || x.length !== y.length || x.some((v, i) => v !== y[i]);
  }).sort();
}

for (const [name, load] of MATRIX) {
  Deno.test(`install of ${name} from gz, zst and stdin gives its key, links, sysconfig and a working tree`, async () => {
    const fx = await load();
    const home = await Deno.makeTempDir({ prefix: "pyprime-versions-" });
    const dir = join(home, "pythons");
    const bin = join(home, "bin");
    const key = `cpython-${fx.version}-linux-x86_64-gnu`;
    const root = join(dir, key);
    const env = { env: { HOME: home } };
    const args = ["--install-dir", dir, "--bin-dir", bin, "--json"];
    try {
      const gz = await runCli(["install", fx.gz, ...args], env);
      assertEquals(gz.code, 0, gz.stderr);
      const [outcome] = JSON.parse(gz.stdout);
      assertEquals(outcome.key, key);
      assertEquals(outcome.format, "gzip");
      assertEquals(outcome.bytecode.failed, []);
      assert(outcome.bytecode.compiled > 400, `${outcome.bytecode.compiled} files compiled`);
      assertEquals(
        await Deno.realPath(join(bin, `python${fx.tag}`)),
        await Deno.realPath(
          join(root, "bin", `python${fx.tag}`),
        ),
      );
      // The probe ran the interpreter: its answer is in the key and the outcome.
      const run = await py(
        join(bin, `python${fx.tag}`),
        "import sys, sysconfig, json, ssl, sqlite3, decimal\n" +
          "print('%d.%d.%d' % sys.version_info[:3], sys.prefix, sysconfig.get_config_var('prefix'))",
      );
      // Run through the bin link, the interpreter lives under the minor-version link:
      // the stable path is its prefix (what a venv made from it records).
      const stable = join(dirname(root), `cpython-${fx.tag}-linux-x86_64-gnu`);
      // sysconfig's prefix is the rewritten final path (3.12) or derived from sys.prefix
      // (3.14+): either names this installation.
      const [version, prefix, configPrefix] = run.out.split(" ");
      assertEquals([version, prefix], [fx.version, stable]);
      assert([stable, root].includes(configPrefix), configPrefix);
      const lib = join(root, "lib", `python${fx.tag}`);
      for await (const e of Deno.readDir(lib)) {
        if (/^_sysconfigdata_.*\.py$/.test(e.name)) {
          assertNotMatch(await Deno.readTextFile(join(lib, e.name)), /'\/install[/']/);
        }
      }
      for (const [archive, stdin] of [[fx.zst, undefined], ["-", fx.gz]] as const) {
        const r = await runCli(
          ["install", archive, ...args, "--reinstall"],
          { env: { HOME: home }, stdin },
        );
        assertEquals(r.code, 0, r.stderr);
        const [again] = JSON.parse(r.stdout);
        assertEquals([again.key, again.status], [key, "reinstalled"]);
        assertEquals(again.format, archive === "-" ? "gzip" : "zstd");
      }
      const c = await runCli(["compile", root, "--optimize", "0,1", "--json"], env);
      assertEquals(c.code, 0, c.stderr);
      assertEquals(JSON.parse(c.stdout).failed, []);
      assertMatch(
        (await py(join(root, "bin", "python3"), "import json; print(json.dumps(1))")).out,
        /^1$/,
      );
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });

  Deno.test(`bytecode of ${name} is byte-identical across --jobs 1, --jobs 2 and reversed order, and only harmlessly unlike a fresh py_compile`, async () => {
    const fx = await load();
    const home = await Deno.makeTempDir({ prefix: "pyprime-repro-" });
    const dir = join(home, "pythons");
    const key = `cpython-${fx.version}-linux-x86_64-gnu`;
    const lib = join(dir, key, "lib", `python${fx.tag}`);
    const env = { env: { HOME: home } };
    const install = (jobs: string) =>
      runCli(["install", fx.zst, "--install-dir", dir, "--no-bin", "--jobs", jobs], env);
    try {
      assertEquals((await install("1")).code, 0);
      const one = await pycs(lib);
      assert(one.size > 400, `${one.size} .pyc files`);
      assertEquals((await runCli(["uninstall", key, "--install-dir", dir], env)).code, 0);
      assertEquals((await install("2")).code, 0);
      assertEquals(differing(one, await pycs(lib)), [], "--jobs 1 vs --jobs 2");
      await removePycaches(lib);
      const python = join(dir, key, "bin", "python3");
      await compileTree({ python, roots: [lib], jobs: 1, testHooks: { reverse: true } });
      assertEquals(differing(one, await pycs(lib)), [], "reversed order");

      const fresh = await comparePycs(python, lib);
      assert(fresh.compared > 400);
      const bad = fresh.differ.filter((d: PycDifference) => !HARMLESS.has(d.why));
      assertEquals(bad, [], `${fx.version}: ${JSON.stringify(fresh.differ)}`);
      // Few files differ at all: the worker's precautions keep the rest identical.
      assert(fresh.differ.length < 20, `${fx.version}: ${JSON.stringify(fresh.differ)}`);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
}

/** PEP 750 template strings and PEP 649 deferred annotations, new in 3.14's compiler. */
const NEW_SYNTAX = `from string.templatelib import Template
name = "w\u00f6rld"
def greet(who: "Person", n: int = 1) -> Template:
    return t"hello {who!r:>10} and {n + 1}" + t'{name}'
class Person:
    age: int
    friends: list[Person]
    def meth(self, other: Person) -> dict[str, Person]: ...
x: Undefined = 3
`;

for (const minor of ["3.14", "3.15"]) {
  Deno.test(`CPython ${minor} compiles t-strings and deferred annotations the same after other files, reversed and alone, as py_compile does`, async () => {
    const fx = await debianFixtures(minor);
    const python = fx.pythonSource;
    const root = await Deno.makeTempDir({ prefix: "pyprime-newsyntax-" });
    try {
      for (const d of ["many", "alone"]) await Deno.mkdir(join(root, d));
      for (const f of ["typing.py", "dataclasses.py", "inspect.py", "functools.py"]) {
        await Deno.copyFile(join(fx.stdlibSource, f), join(root, "many", f));
      }
      for (const d of ["many", "alone"]) {
        await Deno.writeTextFile(join(root, d, "zz_new.py"), NEW_SYNTAX);
      }
      const tag = `cpython-${minor.replace(".", "")}`;
      const runs: Uint8Array[] = [];
      for (const [d, reverse] of [["many", false], ["many", true], ["alone", false]] as const) {
        const dir = join(root, d);
        await Deno.remove(join(dir, "__pycache__"), { recursive: true }).catch(() => {});
        const report = await compileTree({
          python,
          roots: [dir],
          jobs: 1,
          ddir: { from: dir, to: "/same" },
          testHooks: { reverse },
        });
        assertEquals(report.failed, []);
        runs.push(await Deno.readFile(join(dir, "__pycache__", `zz_new.${tag}.pyc`)));
      }
      const same = (a: Uint8Array, b: Uint8Array) =>
        a.length === b.length && a.every((x, i) => x === b[i]);
      assert(same(runs[0], runs[1]) && same(runs[0], runs[2]), "zz_new.pyc depends on history");
      await Deno.remove(join(root, "many", "__pycache__"), { recursive: true });
      await compileTree({ python, roots: [join(root, "many")], jobs: 1 });
      const fresh = await comparePycs(python, join(root, "many"));
      assertEquals(fresh.differ.filter((d) => d.path === "zz_new.py"), []);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
