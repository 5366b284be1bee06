import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { findInterpreterFor } from "../../src/bytecode/find_python.ts";
import { compileTree } from "../../src/bytecode/pool.ts";
import { type CompileOptions, isolationFlags } from "../../src/bytecode/settings.ts";
import { runCompile } from "../../src/cli/compile.ts";
import { CompileError, PyprimeError } from "../../src/errors.ts";
import { exists } from "../../src/fs.ts";
import { Output } from "../../src/cli/output.ts";
import { sourcePython } from "../support/fixtures.ts";

// The interpreter the fixtures use (pyenv 3.12.1 on this project's machines, else
// python3 on PATH), described by itself so the tests run wherever the suite runs.
const [PYTHON, PREFIX, STDLIB, TAG] = new TextDecoder().decode(
  new Deno.Command(sourcePython() ?? "python3", {
    args: [
      "-c",
      "import os, sys, sysconfig; print(os.path.realpath(sys.executable)); " +
      "print(sys.base_prefix); print(sysconfig.get_paths()['stdlib']); print(sys.implementation.cache_tag)",
    ],
    stdout: "piped",
  }).outputSync().stdout,
).trim().split("\n");
const STDLIB_DIRS = [
  "email",
  "json",
  "html",
  "http",
  "urllib",
  "xml",
  "importlib",
  "asyncio",
  "concurrent",
  "logging",
  "collections",
  "unittest",
  "encodings",
];
/** Files whose bytecode once depended on what the worker compiled before. */
const STDLIB_FILES = ["ftplib.py", "test/test_unicode_identifiers.py"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The crafted tree: relative path → source. */
const CRAFTED: Record<string, string | Uint8Array> = {
  "pkg/__init__.py": "",
  "pkg/mod_a.py":
    '"""Module DOC."""\nVALUE = 1\n\ndef f():\n    assert False, "asserts on"\n    return 1\n',
  "pkg/raises.py": "def boom():\n    raise ValueError('boom')\n\nboom()\n",
  "pkg/frozen.py":
    "def f(x):\n    return x in {'tok_a', 'tok_b'}\n\ndef g(x):\n    return x in {'tok_a', 'tok_b'}\n",
  "bad_syntax.py": "def broken(:\n    pass\n",
  "warn.py": 'PATTERN = "\\d+"\n',
  "latin1.py": new Uint8Array([
    ...encoder.encode("# -*- coding: latin-1 -*-\nNAME = '"),
    0xe9,
    ...encoder.encode("'\n"),
  ]),
  "with space/caf\u00e9 \u87d2.py": "X = 'unicode path'\n",
  "skipme/inner.py": "X = 1\n",
};

async function tempDir(): Promise<string> {
  return await Deno.realPath(await Deno.makeTempDir({ prefix: "pyprime_bytecode_" }));
}

async function writeTree(root: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    await Deno.mkdir(dirname(path), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
  }
}

/** Copies a few hundred real stdlib files into `root`. */
async function copyStdlib(root: string): Promise<number> {
  let count = 0;
  const copy = async (rel: string) => {
    await Deno.mkdir(dirname(join(root, rel)), { recursive: true });
    await Deno.copyFile(join(STDLIB, rel), join(root, rel));
    count++;
  };
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(join(STDLIB, rel))) {
      const child = join(rel, entry.name);
      if (entry.isDirectory && entry.name !== "__pycache__" && entry.name !== "test") {
        await walk(child);
      } else if (entry.isFile && entry.name.endsWith(".py")) await copy(child);
    }
  };
  for (const dir of STDLIB_DIRS) await walk(dir);
  for (const file of STDLIB_FILES) {
    if (await exists(join(STDLIB, file))) await copy(file);
    else {
      // Debian's python3 ships its test suite in another package: a stand-in with the
      // non-ASCII identifiers that made that file's bytecode history-dependent.
      await Deno.mkdir(dirname(join(root, file)), { recursive: true });
      await Deno.writeTextFile(
        join(root, file),
        "\u00e4 = 1\nclass \u00c7a:\n    \u00fc = '\u00f6'\n\ndef \u00df(\u00e9=\u00e4):\n    return \u00e9\n",
      );
      count++;
    }
  }
  return count;
}

function pycPath(source: string, level = 0): string {
  const opt = level === 0 ? "" : `.opt-${level}`;
  const name = source.slice(source.lastIndexOf("/") + 1).replace(/\.py$/, "");
  return join(dirname(source), "__pycache__", `${name}.${TAG}${opt}.pyc`);
}

/** Every `.pyc` under `root` → its bytes, keyed by relative path. */
async function readPycs(root: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".pyc")) {
        out.set(path.slice(root.length), await Deno.readFile(path));
      }
    }
  };
  await walk(root);
  return out;
}

async function removePycaches(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && entry.name === "__pycache__") {
      await Deno.remove(path, { recursive: true });
    } else if (entry.isDirectory) await removePycaches(path);
  }
}

/** Runs the test interpreter isolated, without writing bytecode, with `root` first on sys.path. */
async function python(root: string, code: string, extra: string[] = []) {
  const out = await new Deno.Command(PYTHON, {
    args: [
      "-I",
      "-B",
      ...extra,
      "-c",
      `import sys; sys.path.insert(0, ${JSON.stringify(root)})\n${code}`,
    ],
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function flags(pyc: Uint8Array): number {
  return new DataView(pyc.buffer, pyc.byteOffset).getUint32(4, true);
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function compileCrafted(options: Partial<CompileOptions> = {}) {
  const root = await tempDir();
  await writeTree(root, CRAFTED);
  const report = await compileTree({ python: PYTHON, roots: [root], jobs: 2, ...options });
  return { root, report };
}

Deno.test("compileTree writes a .pyc for every source and the interpreter imports them without recompiling", async () => {
  const { root, report } = await compileCrafted();
  try {
    assert.equal(report.files, 9);
    assert.equal(report.compiled, 8);
    assert.equal(report.skipped, 0);
    assert.equal(report.workers, 2);
    for (const rel of Object.keys(CRAFTED).filter((r) => r !== "bad_syntax.py")) {
      assert.ok(await exists(pycPath(join(root, rel))), `no .pyc for ${rel}`);
    }
    // -v prints "<pyc> matches <source>" when the import system accepts a .pyc.
    const modules = ["pkg", "pkg.mod_a", "pkg.frozen", "warn", "latin1"];
    const r = await python(root, `import ${modules.join(", ")}\nprint(latin1.NAME)`, ["-v"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "\u00e9");
    for (const mod of ["pkg/__init__", "pkg/mod_a", "pkg/frozen", "warn", "latin1"]) {
      const pyc = pycPath(join(root, `${mod}.py`));
      assert.ok(r.stderr.includes(`${pyc} matches ${join(root, mod)}.py`), `${mod}: ${r.stderr}`);
    }
    // Without -B the interpreter would rewrite a .pyc it rejected: nothing changes.
    const before = await readPycs(root);
    const again = await new Deno.Command(PYTHON, {
      args: [
        "-I",
        "-c",
        `import sys; sys.path.insert(0, ${JSON.stringify(root)}); import pkg.mod_a, warn, latin1`,
      ],
      clearEnv: true,
    }).output();
    assert.equal(again.code, 0);
    assert.deepEqual(await readPycs(root), before);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree reports syntax errors as failures, not as errors", async () => {
  const { root, report } = await compileCrafted();
  try {
    assert.equal(report.failed.length, 1);
    assert.equal(report.failed[0].path, join(root, "bad_syntax.py"));
    assert.match(report.failed[0].error, /^SyntaxError: .*bad_syntax\.py, line 1/);
    assert.equal(await exists(pycPath(join(root, "bad_syntax.py"))), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree reuse keeps a.py's own .pyc when a.<tag>.py makes it look foreign", async () => {
  const root = await tempDir();
  try {
    // a.<tag>.pyc is a.py's own; for the source a.<tag>.py it reads as another tag's.
    await writeTree(root, { "a.py": "A = 1\n", [`a.${TAG}.py`]: "B = 2\n" });
    const compiled = await compileTree({ python: PYTHON, roots: [root] });
    assert.equal(compiled.compiled, 2);
    const own = join(root, "__pycache__", `a.${TAG}.pyc`);
    const before = await Deno.readFile(own);
    for (const reverse of [false, true]) {
      const report = await compileTree({
        python: PYTHON,
        roots: [root],
        action: "reuse",
        jobs: 1,
        testHooks: { reverse },
      });
      assert.equal(report.reused, 2, `reverse ${reverse}`);
      assert.deepEqual(await Deno.readFile(own), before, `reverse ${reverse}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree skips folders and files matching exclude", async () => {
  const { root, report } = await compileCrafted({ exclude: [/\/skipme\//, /warn\.py$/] });
  try {
    assert.equal(report.skipped, 2);
    assert.equal(report.files, 7);
    assert.equal(await exists(join(root, "skipme", "__pycache__")), false);
    assert.equal(await exists(pycPath(join(root, "warn.py"))), false);
    assert.ok(await exists(pycPath(join(root, "pkg", "mod_a.py"))));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree sets the pyc flags and header of each invalidation mode", async () => {
  const expected = { "timestamp": 0, "checked-hash": 0b11, "unchecked-hash": 0b01 } as const;
  for (const [mode, flag] of Object.entries(expected)) {
    const dir = await tempDir();
    try {
      const source = join(dir, "m.py");
      await Deno.writeTextFile(source, "VALUE = 'old'\n");
      await compileTree({
        python: PYTHON,
        roots: [dir],
        invalidationMode: mode as keyof typeof expected,
      });
      const pyc = await Deno.readFile(pycPath(source));
      assert.equal(flags(pyc), flag, mode);
      // The header's second half is what CPython itself computes for this mode.
      const check = await python(
        dir,
        `import importlib.util, os\nsrc = open('m.py', 'rb').read()\nst = os.stat('m.py')\n` +
          `print(importlib.util.source_hash(src).hex() if ${flag} else ` +
          `(int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, 'little').hex() + (st.st_size).to_bytes(4, 'little').hex())\n` +
          `print(importlib.util.MAGIC_NUMBER.hex())`,
      );
      const [tail, magic] = check.stdout.trim().split("\n");
      const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
      assert.equal(hex(pyc.subarray(8, 16)), tail, mode);
      assert.equal(hex(pyc.subarray(0, 4)), magic, mode);
      // unchecked-hash .pyc are used even when the source changed; the others are not.
      await Deno.writeTextFile(source, "VALUE = 'new'\n# changed\n");
      const r = await python(dir, "import m; print(m.VALUE)");
      assert.equal(r.stdout.trim(), mode === "unchecked-hash" ? "old" : "new", mode);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("compileTree writes every optimize level from one request", async () => {
  const { root, report } = await compileCrafted({ optimize: [2, 0, 1] });
  try {
    assert.equal(report.compiled, 8);
    const source = join(root, "pkg", "mod_a.py");
    const code = [0, 1, 2].map((level) =>
      `import marshal\nns = {'__name__': 'm${level}'}\n` +
      `exec(marshal.loads(open(${
        JSON.stringify(pycPath(source, level))
      }, 'rb').read()[16:]), ns)\n` +
      `try:\n    r = ns['f']()\nexcept AssertionError:\n    r = 'assert'\nprint(${level}, r, ns.get('__doc__'))`
    ).join("\n");
    const r = await python(root, code);
    assert.equal(r.stdout, "0 assert Module DOC.\n1 1 Module DOC.\n2 1 None\n", r.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree records the ddir-mapped path in co_filename and tracebacks", async () => {
  // Like an install: compile in a staging dir, mapped to the final dir, then rename.
  const root = await tempDir();
  const staging = join(root, "staging");
  const final = join(root, "final");
  await writeTree(staging, CRAFTED);
  try {
    const report = await compileTree({
      python: PYTHON,
      roots: [staging],
      ddir: { from: staging, to: final },
    });
    assert.equal(report.compiled, 8);
    await Deno.rename(staging, final);
    const pyc = pycPath(join(final, "pkg", "raises.py"));
    // Loaded without its source (as tools and sourceless loads see it).
    const loaded = await python(
      root,
      `import marshal\ncode = marshal.loads(open(${JSON.stringify(pyc)}, 'rb').read()[16:])\n` +
        `print(code.co_filename)\nexec(code, {'__name__': 'raises'})`,
    );
    assert.equal(loaded.stdout.trim(), `${final}/pkg/raises.py`);
    assert.match(loaded.stderr, new RegExp(`File "${final}/pkg/raises\\.py", line 2, in boom`));
    assert.match(loaded.stderr, /ValueError: boom/);
    // Imported from the final place, through the .pyc compiled in staging.
    const imported = await python(final, "import pkg.raises", ["-v"]);
    assert.ok(imported.stderr.includes(`${pyc} matches ${final}/pkg/raises.py`), imported.stderr);
    assert.match(imported.stderr, new RegExp(`File "${final}/pkg/raises\\.py", line 2, in boom`));
    assert.doesNotMatch(imported.stderr, /staging/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree output is byte-identical whatever the job count and compile order", async () => {
  const root = await tempDir();
  try {
    const copied = await copyStdlib(root);
    assert.ok(copied > 250, `only ${copied} stdlib files`);
    // A big file compiled first by a single worker interns strings that later
    // files use: without the worker's precautions, their bytes changed.
    await writeTree(root, {
      "zz_target.py": "A = '\u00e4'\n" + CRAFTED["pkg/frozen.py"],
      "aa_history.py": "\u00e4 = tok_a = tok_b = 1\n" + "# padding\n".repeat(5000) +
        await Deno.readTextFile(join(STDLIB, "ftplib.py")),
    });
    const runs: Map<string, Uint8Array>[] = [];
    const ddir = { from: root, to: "/opt/same" };
    for (const jobs of [1, 2]) {
      await removePycaches(root);
      const report = await compileTree({
        python: PYTHON,
        roots: [root],
        jobs,
        optimize: [0, 1, 2],
        ddir,
      });
      assert.equal(report.failed.length, 0, JSON.stringify(report.failed));
      runs.push(await readPycs(root));
    }
    assert.equal(runs[0].size, 3 * (copied + 2));
    for (const run of runs.slice(1)) {
      const differ = [...runs[0]].filter(([rel, bytes]) => !equalBytes(bytes, run.get(rel)));
      assert.deepEqual(differ.map(([rel]) => rel), []);
    }
    // zz_target.py alone, in a fresh worker, gives the same bytes as after aa_history.py.
    const alone = await tempDir();
    try {
      await Deno.copyFile(join(root, "zz_target.py"), join(alone, "zz_target.py"));
      await Deno.utime(join(alone, "zz_target.py"), ...(await mtimes(join(root, "zz_target.py"))));
      await compileTree({
        python: PYTHON,
        roots: [alone],
        jobs: 1,
        optimize: [0, 1, 2],
        ddir: { from: alone, to: "/opt/same" },
      });
      for (const level of [0, 1, 2]) {
        const a = await Deno.readFile(pycPath(join(alone, "zz_target.py"), level));
        const b = await Deno.readFile(pycPath(join(root, "zz_target.py"), level));
        assert.ok(equalBytes(a, b), `zz_target level ${level} depends on history`);
      }
    } finally {
      await Deno.remove(alone, { recursive: true });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function mtimes(path: string): Promise<[Date, Date]> {
  const info = await Deno.stat(path);
  return [info.atime!, info.mtime!];
}

function equalBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

Deno.test("compileTree handles paths with spaces, unicode and newlines", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, {
      "dir with space/\u00fcml\u00e4ut \u2603.py": "X = 1\n",
      "new\nline.py": "X = 2\n",
    });
    const report = await compileTree({ python: PYTHON, roots: [root] });
    assert.equal(report.files, 2);
    assert.equal(report.compiled, 1);
    assert.equal(report.failed[0].path, join(root, "new\nline.py"));
    assert.match(report.failed[0].error, /newline/);
    const source = join(root, "dir with space", "\u00fcml\u00e4ut \u2603.py");
    const r = await python(
      join(root, "dir with space"),
      "import importlib; m = importlib.import_module('\\u00fcml\\u00e4ut \\u2603'); print(m.X)",
      ["-v"],
    );
    assert.equal(r.stdout.trim(), "1", r.stderr);
    assert.ok(r.stderr.includes(`${pycPath(source)} matches ${source}`));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree refuses to write through a symlinked __pycache__ and skips symlinked sources", async () => {
  const root = await tempDir();
  const outside = await tempDir();
  try {
    await writeTree(root, { "evil/x.py": "X = 1\n", "real.py": "Y = 1\n" });
    await Deno.symlink(outside, join(root, "evil", "__pycache__"));
    await Deno.symlink(join(root, "real.py"), join(root, "link.py"));
    const report = await compileTree({ python: PYTHON, roots: [root] });
    assert.equal(report.skipped, 1);
    assert.equal(report.compiled, 1);
    assert.equal(report.failed.length, 1);
    assert.match(report.failed[0].error, /not a directory/);
    assert.deepEqual([...Deno.readDirSync(outside)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("compileTree rejects an interpreter outside confineTo", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, { "a.py": "X = 1\n" });
    await Deno.mkdir(join(root, "bin"));
    await Deno.symlink(PYTHON, join(root, "bin", "python3"));
    await assert.rejects(
      compileTree({ python: join(root, "bin", "python3"), confineTo: root, roots: [root] }),
      (err: unknown) => err instanceof CompileError && /outside/.test(err.message),
    );
    assert.equal(await exists(join(root, "__pycache__")), false);
    // Roots are confined too: the stdlib an install compiles comes from its interpreter.
    await assert.rejects(
      compileTree({ python: PYTHON, confineTo: PREFIX, roots: [root] }),
      (err: unknown) =>
        err instanceof CompileError && /Refusing to compile .*outside/.test(err.message),
    );
    const ok = await compileTree({ python: PYTHON, roots: [root] });
    assert.equal(ok.compiled, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** A tree whose single worker answers for big.py, then stalls on stall_here.py. */
async function stallingTree(root: string): Promise<void> {
  await writeTree(root, {
    "big.py": "X = 1\n" + "# pad\n".repeat(1000),
    "stall_here.py": "Y = 1\n",
  });
}

Deno.test("compileTree rejects with CompileError when a worker is killed mid-run", async () => {
  const root = await tempDir();
  const pids: number[] = [];
  try {
    await stallingTree(root);
    // The answer for big.py arrives when the worker starts stall_here.py.
    const run = compileTree({
      python: PYTHON,
      roots: [root],
      jobs: 1,
      onProgress: (done) => done === 1 && Deno.kill(pids[0], "SIGKILL"),
      testHooks: { stallOn: "stall_here.py", onSpawn: (pid) => pids.push(pid) },
    });
    await assert.rejects(run, (err: unknown) => {
      assert.ok(err instanceof CompileError);
      assert.match(
        err.message,
        new RegExp(`died while compiling ${root}/stall_here\\.py: killed by signal SIGKILL`),
      );
      return true;
    });
    assert.equal(pids.length, 1);
    assert.equal(pidAlive(pids[0]), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree times out per file and leaves no worker running", async () => {
  const root = await tempDir();
  const pids: number[] = [];
  try {
    await writeTree(root, { "stall_here.py": "X = 1\n", "a.py": "A = 1\n", "b.py": "B = 1\n" });
    const started = performance.now();
    await assert.rejects(
      compileTree({
        python: PYTHON,
        roots: [root],
        jobs: 2,
        timeoutMs: 400,
        testHooks: { stallOn: "stall_here.py", onSpawn: (pid) => pids.push(pid) },
      }),
      (err: unknown) =>
        err instanceof CompileError &&
        err.message ===
          `Bytecode compilation of ${join(root, "stall_here.py")} timed out after 0.4s`,
    );
    assert.ok(performance.now() - started < 5000);
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.equal(pidAlive(pid), false, `worker ${pid} still exists`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree aborts: rejects with the signal's reason and kills the workers", async () => {
  const root = await tempDir();
  const pids: number[] = [];
  try {
    await stallingTree(root);
    const controller = new AbortController();
    const reason = new Error("stop now");
    const onProgress = (done: number) => {
      if (done !== 1) return;
      // Ctrl-C in a terminal signals the workers too: they leave the decision to us.
      Deno.kill(pids[0], "SIGINT");
      setTimeout(() => controller.abort(reason), 200);
    };
    await assert.rejects(
      compileTree({
        python: PYTHON,
        roots: [root],
        jobs: 1,
        signal: controller.signal,
        onProgress,
        testHooks: { stallOn: "stall_here.py", onSpawn: (pid) => pids.push(pid) },
      }),
      (err: unknown) => err === reason,
    );
    assert.equal(pids.length, 1);
    assert.equal(pidAlive(pids[0]), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree reports a worker that is not a Python interpreter", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, { "a.py": "X = 1\n" });
    await assert.rejects(
      compileTree({ python: "/bin/true", roots: [root] }),
      (err: unknown) => err instanceof CompileError && /before it started/.test(err.message),
    );
    await assert.rejects(
      compileTree({ python: join(root, "missing"), roots: [root] }),
      (err: unknown) => err instanceof CompileError && /Cannot find interpreter/.test(err.message),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree workers ignore PYTHON* and LD_* variables of the parent", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, {
      "tree/m.py": '"""doc"""\nP = "\\d"\n\ndef f():\n    assert False\n',
      "tree/s.py": "S = {'x', 'y', 'z'}\n",
      "evil/sitecustomize.py": `open(${JSON.stringify(join(root, "marker"))}, 'w').close()\n`,
      "evil/usercustomize.py": `open(${JSON.stringify(join(root, "marker"))}, 'w').close()\n`,
      "run.ts": `
        import { compileTree } from ${
        JSON.stringify(new URL("../../src/bytecode/pool.ts", import.meta.url).href)
      };
        const pids: number[] = [];
        let environ = "";
        const report = await compileTree({
          python: ${JSON.stringify(PYTHON)},
          roots: [${JSON.stringify(join(root, "tree"))}],
          jobs: 1,
          testHooks: { onSpawn: (pid) => pids.push(pid) },
          onProgress: (done) => {
            if (done > 0 && !environ) environ = Deno.readTextFileSync("/proc/" + pids[0] + "/environ");
          },
        });
        Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify({ report, environ })));
      `,
    });
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--no-check", join(root, "run.ts")],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, decoder.decode(out.stderr));
      return JSON.parse(decoder.decode(out.stdout));
    };
    const polluted = await run({
      PYTHONPATH: join(root, "evil"),
      PYTHONDONTWRITEBYTECODE: "1",
      PYTHONWARNINGS: "error",
      PYTHONOPTIMIZE: "2",
      PYTHONHASHSEED: "12345",
      PYTHONUSERBASE: join(root, "evil"),
      LD_PRELOAD: join(root, "missing.so"),
      LD_LIBRARY_PATH: join(root, "evil"),
    });
    assert.equal(polluted.report.compiled, 2, JSON.stringify(polluted.report.failed));
    assert.equal(polluted.environ, "PYTHONHASHSEED=0\0");
    assert.equal(await exists(join(root, "marker")), false);
    const dirty = await readPycs(join(root, "tree"));
    await removePycaches(join(root, "tree"));
    const clean = await run({ PYTHONDONTWRITEBYTECODE: "", PYTHONPATH: "" });
    assert.equal(clean.report.compiled, 2);
    const fresh = await readPycs(join(root, "tree"));
    assert.equal(fresh.size, 2);
    for (const [rel, bytes] of fresh) assert.ok(equalBytes(bytes, dirty.get(rel)), rel);
    // PYTHONOPTIMIZE was ignored: the level-0 .pyc keeps its docstring and assert.
    const r = await python(
      join(root, "tree"),
      "import m; print(m.__doc__)\ntry:\n    m.f()\nexcept AssertionError:\n    print('assert')",
    );
    assert.equal(r.stdout, "doc\nassert\n");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compileTree with no sources starts no work and reports zero files", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, { "README.txt": "no python here\n" });
    const report = await compileTree({ python: PYTHON, roots: [root], jobs: 3 });
    assert.equal(report.files, 0);
    assert.equal(report.compiled, 0);
    await assert.rejects(
      compileTree({ python: PYTHON, roots: [join(root, "absent")] }),
      (err: unknown) => err instanceof CompileError && err.message.includes(join(root, "absent")),
    );
    await assert.rejects(
      compileTree({ python: PYTHON, roots: ["relative/dir"] }),
      (err: unknown) => err instanceof CompileError && /absolute/.test(err.message),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("findInterpreterFor walks up to the installation holding bin/python3 and lib/python3.*", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, {
      "inst/bin/python3": "",
      "inst/lib/python3.12/json/__init__.py": "",
      "other/lib/x.py": "",
    });
    assert.equal(
      await findInterpreterFor(join(root, "inst", "lib", "python3.12", "json")),
      join(root, "inst", "bin", "python3"),
    );
    assert.equal(
      await findInterpreterFor(join(root, "inst", "lib", "python3.12", "json", "__init__.py")),
      join(root, "inst", "bin", "python3"),
    );
    // The walk stops below "/": a merged-/usr root looks like an installation.
    assert.equal(await findInterpreterFor(join(root, "other", "lib")), undefined);
    assert.equal(await findInterpreterFor(join(root, "nowhere")), undefined);
    assert.equal(await findInterpreterFor(join(STDLIB, "json")), join(PREFIX, "bin", "python3"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runCompile compiles with the tree's own interpreter and returns 1 when a file fails, as compileall does", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, CRAFTED);
    const out = new Output({ verbosity: "quiet", progress: false });
    const code = await runCompile(
      [root],
      { python: PYTHON, optimize: [0, 1], exclude: ["skipme"] },
      out,
    );
    assert.equal(code, 1);
    assert.ok(await exists(pycPath(join(root, "pkg", "mod_a.py"), 1)));
    assert.equal(await exists(join(root, "skipme", "__pycache__")), false);
    await assert.rejects(
      runCompile([root], {}, out),
      (err: unknown) =>
        err instanceof PyprimeError && /Cannot find the Python installation/.test(err.message) &&
        !!err.hint,
    );
    await assert.rejects(
      runCompile([root], { python: PYTHON, exclude: ["("] }, out),
      (err: unknown) => err instanceof PyprimeError && /not a regular expression/.test(err.message),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runCompile lets a CompileError through", async () => {
  const root = await tempDir();
  try {
    await writeTree(root, { "a.py": "X = 1\n" });
    const out = new Output({ verbosity: "quiet", progress: false });
    await assert.rejects(runCompile([root], { python: "/bin/true" }, out), CompileError);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the worker writes what py_compile writes", async () => {
  const root = await tempDir();
  const ref = await tempDir();
  try {
    const stdlib = ["decoder", "encoder", "scanner"];
    // a.py has an assert; b.py has none, so its level 1 .pyc is the level 0 one.
    await writeTree(root, {
      "a.py": CRAFTED["pkg/mod_a.py"],
      "b.py": 'X = 1\n\ndef f():\n    """Doc."""\n    return X\n',
    });
    for (const n of stdlib) {
      await Deno.copyFile(join(STDLIB, "json", `${n}.py`), join(root, `${n}.py`));
    }
    const names = ["a", "b", ...stdlib];
    const levels = [0, 1, 2];
    for (const mode of ["timestamp", "checked-hash", "unchecked-hash"] as const) {
      await compileTree({
        python: PYTHON,
        roots: [root],
        invalidationMode: mode,
        optimize: levels,
      });
      const enumName = mode.toUpperCase().replace("-", "_");
      // Code objects compare equal whatever the marshal flags of interned strings.
      const script = [
        "import py_compile, marshal, importlib.util",
        `for n in ${JSON.stringify(names)}:`,
        "  for o in (0, 1, 2):",
        `    src = ${JSON.stringify(root)} + '/' + n + '.py'`,
        `    ref = ${JSON.stringify(ref)} + '/' + n + '.' + str(o) + '.pyc'`,
        "    py_compile.compile(src, cfile=ref, doraise=True, optimize=o,",
        `                       invalidation_mode=py_compile.PycInvalidationMode.${enumName})`,
        "    ours = open(importlib.util.cache_from_source(src, optimization=o or ''), 'rb').read()",
        "    theirs = open(ref, 'rb').read()",
        "    same_code = marshal.loads(ours[16:]) == marshal.loads(theirs[16:])",
        "    print(n, o, ours[:16] == theirs[:16], same_code)",
      ].join("\n");
      const r = await python(root, script);
      assert.equal(r.code, 0, r.stderr);
      const expected = names.flatMap((n) => levels.map((o) => `${n} ${o} True True\n`));
      assert.equal(r.stdout, expected.join(""), mode);
      // Byte for byte when no one-character string is involved (see bytecode_worker.ts).
      for (const n of ["a", "b"]) {
        for (const level of levels) {
          const ours = await Deno.readFile(pycPath(join(root, `${n}.py`), level));
          const theirs = await Deno.readFile(join(ref, `${n}.${level}.pyc`));
          assert.ok(equalBytes(ours, theirs), `${mode} ${n}.py level ${level}`);
        }
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(ref, { recursive: true });
  }
});

Deno.test("isolationFlags uses -I from CPython 3.11 on, -s with PYTHONHASHSEED before", () => {
  assert.deepEqual(isolationFlags("/x/bin/python3.11"), ["-I"]);
  assert.deepEqual(isolationFlags("/x/bin/python3.13t"), ["-I"]);
  assert.deepEqual(isolationFlags("/x/bin/python3.10"), ["-s"]);
  assert.deepEqual(isolationFlags("/x/bin/python3.8"), ["-s"]);
  assert.deepEqual(isolationFlags("/x/bin/python"), ["-s"]);
});
