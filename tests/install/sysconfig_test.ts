import assert from "node:assert/strict";
import { join } from "node:path";
import { ArchiveError } from "../../src/errors.ts";
import { patchConfigValue, patchPkgconfig, rewriteSysconfig } from "../../src/install/sysconfig.ts";
import { pythonString } from "../../src/install/python_literal.ts";
import { fixtures } from "../support/fixtures.ts";

const MODULE = "_sysconfigdata__linux_x86_64-linux-gnu";
const DATA_REL = `lib/python3.12/${MODULE}.py`;

const PBS_SYSCONFIGDATA = `# system configuration generated and used by the sysconfig module
build_time_vars = {'ABIFLAGS': '',
 'AR': '/tools/llvm/bin/llvm-ar',
 'BINDIR': '/install/bin',
 'BLDSHARED': 'clang -shared -L/tools/deps/lib',
 'CC': 'clang -pthread',
 'CONFIG_ARGS': "'--prefix=/install' '--enable-shared' "
                "'CC=clang'",
 'CXX': 'clang++ -pthread',
 'ESCAPES': 'tab\\there \\\\ back \\'q\\' \\x7f end',
 'INCLUDEPY': '/install/include/python3.12',
 'LDCXXSHARED': 'clang++ -shared',
 'LDSHARED': 'clang -shared '
             '/install/lib/libextra.a  -lm',
 'LIBDIR': '/install/lib',
 'LIBPL': '/install/lib/python3.12/config-3.12-x86_64-linux-gnu',
 'LINKCC': 'clang',
 'MACOS_FLAGS': 'clang -arch arm64 -isysroot /Applications/Xcode.app/SDK -O2',
 'NEG': -1,
 'NOT_PREFIX': '/installer/bin /install-x -L/install/lib',
 'Py_ENABLE_SHARED': 1,
 'base': '/install',
 'prefix': '/install',
 'srcdir': '.'}
`;

const PLAIN_SYSCONFIGDATA = `# system configuration generated and used by the sysconfig module
build_time_vars = {'AR': 'ar',
 'BINDIR': '/usr/bin',
 'CC': 'gcc -pthread',
 'LDSHARED': 'gcc -shared  ',
 'prefix': '/usr'}
`;

const PBS_PC = `# See: man pkg-config
prefix=/install
exec_prefix=\${prefix}
libdir=/install/lib
includedir=\${prefix}/include

Name: Python
Description: Build a C extension for Python
Requires:
Version: 3.12
Libs.private: -ldl -L/install/lib
Libs:
Cflags: -I\${includedir}/python3.12
`;

async function tempRoot(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "pyprime-sysconfig-" });
  for (const [rel, text] of Object.entries(files)) {
    await Deno.mkdir(join(root, rel, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, rel), text);
  }
  return root;
}

/** Imports the module with a real interpreter and returns its `build_time_vars`. */
async function importVars(dir: string, module = MODULE): Promise<Record<string, unknown>> {
  const python = (await fixtures()).pythonSource;
  const out = await new Deno.Command(python, {
    args: [
      "-I",
      "-B",
      "-c",
      "import importlib, json, sys; sys.path.insert(0, sys.argv[1]); " +
      "print(json.dumps(importlib.import_module(sys.argv[2]).build_time_vars))",
      dir,
      module,
    ],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("rewriteSysconfig replaces /install words, compilers and AR like uv", async () => {
  const root = await tempRoot({ [DATA_REL]: PBS_SYSCONFIGDATA });
  try {
    const before = await importVars(join(root, "lib/python3.12"));
    const changed = await rewriteSysconfig(root, "/opt/py");
    assert.deepEqual(changed, [DATA_REL]);
    const after = await importVars(join(root, "lib/python3.12"));
    const expected: Record<string, unknown> = {
      ...before,
      AR: "ar",
      BINDIR: "/opt/py/bin",
      BLDSHARED: "cc -shared -L/tools/deps/lib",
      CC: "cc -pthread",
      CXX: "c++ -pthread",
      INCLUDEPY: "/opt/py/include/python3.12",
      LDCXXSHARED: "c++ -shared",
      LDSHARED: "cc -shared /opt/py/lib/libextra.a  -lm",
      LIBDIR: "/opt/py/lib",
      LIBPL: "/opt/py/lib/python3.12/config-3.12-x86_64-linux-gnu",
      LINKCC: "cc",
      MACOS_FLAGS: "clang -arch arm64 -O2",
      base: "/opt/py",
      prefix: "/opt/py",
      PYTHON_BUILD_STANDALONE: 1,
    };
    assert.deepEqual(after, expected);
    // Values that need no change keep their exact source text.
    const text = await Deno.readTextFile(join(root, DATA_REL));
    assert.ok(text.includes(`'ESCAPES': 'tab\\there \\\\ back \\'q\\' \\x7f end',`));
    assert.ok(text.includes(`'CONFIG_ARGS': "'--prefix=/install' '--enable-shared' "\n`));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig makes pkg-config prefixes relative to the .pc file", async () => {
  const root = await tempRoot({
    "lib/pkgconfig/python-3.12.pc": PBS_PC,
    "lib/pkgconfig/python3-crlf.pc": PBS_PC.replaceAll("\n", "\r\n"),
  });
  try {
    const changed = await rewriteSysconfig(root, "/opt/py");
    assert.deepEqual(changed, ["lib/pkgconfig/python-3.12.pc", "lib/pkgconfig/python3-crlf.pc"]);
    const text = await Deno.readTextFile(join(root, "lib/pkgconfig/python-3.12.pc"));
    const lines = text.split("\n");
    assert.equal(lines[1], "prefix=${pcfiledir}/../..");
    assert.equal(lines[2], "exec_prefix=${prefix}");
    assert.equal(lines[3], "libdir=${pcfiledir}/../../lib");
    assert.equal(lines[10], "Libs.private: -ldl -L/install/lib");
    assert.ok(text.endsWith("python3.12\n"));
    const crlf = await Deno.readTextFile(join(root, "lib/pkgconfig/python3-crlf.pc"));
    assert.ok(crlf.includes("\r\nprefix=${pcfiledir}/../..\r\n"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig is idempotent", async () => {
  for (const prefix of ["/opt/py", "/install/nested"]) {
    const root = await tempRoot({
      [DATA_REL]: PBS_SYSCONFIGDATA,
      "lib/pkgconfig/python3.pc": PBS_PC,
    });
    try {
      assert.equal((await rewriteSysconfig(root, prefix)).length, 2);
      const once = await Deno.readTextFile(join(root, DATA_REL));
      const pcOnce = await Deno.readTextFile(join(root, "lib/pkgconfig/python3.pc"));
      assert.deepEqual(await rewriteSysconfig(root, prefix), []);
      assert.equal(await Deno.readTextFile(join(root, DATA_REL)), once);
      assert.equal(await Deno.readTextFile(join(root, "lib/pkgconfig/python3.pc")), pcOnce);
      assert.equal((once.match(/PYTHON_BUILD_STANDALONE/g) ?? []).length, 1);
      const vars = await importVars(join(root, "lib/python3.12"));
      assert.equal(vars.BINDIR, `${prefix}/bin`);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
});

Deno.test("rewriteSysconfig escapes a final prefix with spaces, quotes and a backslash", async () => {
  const root = await tempRoot({ [DATA_REL]: PBS_SYSCONFIGDATA });
  const prefix = `/tmp/my "py" it's \\ here`;
  try {
    await rewriteSysconfig(root, prefix);
    const vars = await importVars(join(root, "lib/python3.12"));
    assert.equal(vars.prefix, prefix);
    assert.equal(vars.BINDIR, `${prefix}/bin`);
    assert.equal(vars.LDSHARED, `cc -shared ${prefix}/lib/libextra.a  -lm`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig leaves files without /install untouched", async () => {
  const plainPc = PBS_PC.replaceAll("/install", "/usr");
  const root = await tempRoot({
    [DATA_REL]: PLAIN_SYSCONFIGDATA,
    "lib/pkgconfig/python3.pc": plainPc,
  });
  try {
    const mtime = (await Deno.stat(join(root, DATA_REL))).mtime;
    assert.deepEqual(await rewriteSysconfig(root, "/opt/py"), []);
    assert.equal(await Deno.readTextFile(join(root, DATA_REL)), PLAIN_SYSCONFIGDATA);
    assert.equal(await Deno.readTextFile(join(root, "lib/pkgconfig/python3.pc")), plainPc);
    assert.deepEqual((await Deno.stat(join(root, DATA_REL))).mtime, mtime);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig accepts an installation without sysconfig files", async () => {
  const root = await tempRoot({ "bin/python3": "" });
  try {
    assert.deepEqual(await rewriteSysconfig(root, "/opt/py"), []);
    assert.deepEqual(await rewriteSysconfig(join(root, "missing"), "/opt/py"), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig names the file when sysconfig data is not a literal", async () => {
  const bad = "build_time_vars = {'BINDIR': os.path.join('/install', 'bin')}\n";
  const root = await tempRoot({ [DATA_REL]: bad });
  try {
    await assert.rejects(rewriteSysconfig(root, "/opt/py"), (err: unknown) => {
      assert.ok(err instanceof ArchiveError);
      assert.match(err.message, /^Cannot rewrite "lib\/python3\.12\/_sysconfigdata_.*\.py": /);
      return true;
    });
    assert.equal(await Deno.readTextFile(join(root, DATA_REL)), bad);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig patches the JSON sysconfig vars of Python 3.14", async () => {
  const rel = "lib/python3.14/_sysconfig_vars__linux_x86_64-linux-gnu.json";
  const json = JSON.stringify({ BINDIR: "/install/bin", AR: "llvm-ar", SIZEOF_INT: 4 }, null, 2);
  const root = await tempRoot({ [rel]: json });
  try {
    assert.deepEqual(await rewriteSysconfig(root, "/opt/py"), [rel]);
    const vars = JSON.parse(await Deno.readTextFile(join(root, rel)));
    assert.deepEqual(vars, { BINDIR: "/opt/py/bin", AR: "ar", SIZEOF_INT: 4 });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteSysconfig rejects a relative final prefix", async () => {
  await assert.rejects(rewriteSysconfig("/nonexistent", "relative/dir"), TypeError);
});

Deno.test("patchConfigValue replaces whole words only", () => {
  assert.equal(patchConfigValue("CC", "/usr/bin/x86_64-linux-gnu-gcc -O2", "/p"), "cc -O2");
  assert.equal(patchConfigValue("CXX", "clang++", "/p"), "c++");
  assert.equal(patchConfigValue("CC", "clang-17 -O2", "/p"), "clang-17 -O2");
  assert.equal(patchConfigValue("OTHER", "clang /install", "/p"), "clang /p");
  assert.equal(patchConfigValue("X", "/install-x /installer", "/p"), "/install-x /installer");
  assert.equal(patchConfigValue("X", "/install/lib", "/p/"), "/p/lib");
});

Deno.test("patchPkgconfig keeps lines that are not /install variables", () => {
  const text = "prefix=/usr\nLibs: -L/install/lib\nexec_prefix=/install\n";
  assert.equal(
    patchPkgconfig(text),
    "prefix=/usr\nLibs: -L/install/lib\nexec_prefix=${pcfiledir}/../..\n",
  );
});

Deno.test("pythonString quotes like repr", () => {
  assert.equal(pythonString("a'b"), `"a'b"`);
  assert.equal(pythonString(`a'b"c`), `'a\\'b"c'`);
  assert.equal(pythonString("t\tn\nx\x01é"), "'t\\tn\\nx\\x01é'");
});

Deno.test("rewriteSysconfig fixes the fixture archive so its interpreter reports the real prefix", async () => {
  const fx = await fixtures();
  const dir = await Deno.makeTempDir({ prefix: "pyprime-sysconfig-real-" });
  try {
    const tar = await new Deno.Command("tar", { args: ["-xzf", fx.gz, "-C", dir] }).output();
    assert.ok(tar.success, new TextDecoder().decode(tar.stderr));
    const root = await Deno.realPath(join(dir, "python"));
    const lib = join(root, "lib", `python${fx.tag}`);
    const data = [...Deno.readDirSync(lib)].find((e) => e.name.startsWith("_sysconfigdata_"))!;
    assert.match(await Deno.readTextFile(join(lib, data.name)), /'\/install\//);
    const changed = await rewriteSysconfig(root, root);
    assert.ok(changed.includes(`lib/python${fx.tag}/${data.name}`));
    const out = await new Deno.Command(join(root, "bin", "python3"), {
      args: [
        "-I",
        "-B",
        "-c",
        "import json, sysconfig; v = sysconfig.get_config_vars(); print(json.dumps(v))",
      ],
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const vars = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(vars.prefix, root);
    assert.equal(vars.LIBDIR, `${root}/lib`);
    assert.equal(vars.INCLUDEPY, `${root}/include/python${fx.tag}`);
    assert.equal(vars.PYTHON_BUILD_STANDALONE, 1);
    const leftovers = Object.entries(vars).filter(([, v]) =>
      typeof v === "string" &&
      v.split(/\s+/).some((w) => w === "/install" || w.startsWith("/install/"))
    );
    assert.deepEqual(leftovers, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
