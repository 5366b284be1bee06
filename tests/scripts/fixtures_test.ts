import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { createTarDecoder, type TarHeader } from "modern-tar";
import { buildFixtures } from "../../scripts/build_fixtures.ts";
import { FIXTURE_CACHE, fixtures, REPO_ROOT } from "../support/fixtures.ts";

const decoder = new TextDecoder();

interface Listing {
  headers: TarHeader[];
  byName: Map<string, TarHeader>;
  bodies: Map<string, Uint8Array>;
}

/** Lists a .tar.gz / .tar.zst with modern-tar, keeping the bodies `keep` asks for. */
async function list(path: string, keep: (name: string) => boolean = () => false): Promise<Listing> {
  const file = await Deno.open(path);
  const tar = path.endsWith(".gz")
    ? file.readable.pipeThrough(new DecompressionStream("gzip"))
    : Readable.toWeb(
      Readable.fromWeb(file.readable as never).pipe(zlib.createZstdDecompress()),
    ) as unknown as ReadableStream<Uint8Array>;
  const headers: TarHeader[] = [];
  const bodies = new Map<string, Uint8Array>();
  for await (const entry of tar.pipeThrough(createTarDecoder({ strict: true }))) {
    headers.push(entry.header);
    if (keep(entry.header.name)) {
      bodies.set(entry.header.name, new Uint8Array(await new Response(entry.body).arrayBuffer()));
    } else await entry.body.cancel();
  }
  return { headers, byName: new Map(headers.map((h) => [h.name, h])), bodies };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

function isSysconfigdata(name: string): boolean {
  return /\/lib\/python\d+\.\d+t?\/_sysconfigdata_[^/]*\.py$/.test(name);
}

Deno.test("fixture install_only archives have the PBS layout", async () => {
  const fx = await fixtures();
  const lib = `python/lib/python${fx.tag}`;
  const gz = await list(fx.gz, isSysconfigdata);
  const zst = await list(fx.zst);
  const names = gz.headers.map((h) => h.name);
  assert.deepEqual(zst.headers.map((h) => h.name), names);
  assert.deepEqual(names, [...names].sort(), "entries are sorted, so builds are deterministic");
  assert.ok(names.every((n) => n === "python/" || n.startsWith("python/")));

  const exe = gz.byName.get(`python/bin/python${fx.tag}`);
  assert.equal(exe?.type, "file");
  assert.equal(exe?.mode, 0o755);
  for (const link of ["python/bin/python3", "python/bin/python"]) {
    assert.equal(gz.byName.get(link)?.type, "symlink", link);
    assert.equal(gz.byName.get(link)?.linkname, `python${fx.tag}`, link);
  }
  const libpython = names.filter((n) => /^python\/lib\/libpython[^/]*$/.test(n));
  if (fx.shared) {
    assert.ok(libpython.includes(`python/lib/libpython${fx.tag}.so.1.0`), libpython.join(" "));
    assert.equal(gz.byName.get(`python/lib/libpython${fx.tag}.so`)?.type, "symlink");
  } else {
    assert.deepEqual(libpython, []);
  }
  if (fx.pythonSource.includes("/.pyenv/")) assert.ok(fx.shared, "pyenv builds are shared");

  assert.equal(gz.byName.get(`${lib}/os.py`)?.type, "file");
  assert.ok(names.some((n) => n.startsWith(`${lib}/lib-dynload/`) && n.endsWith(".so")));
  assert.ok(names.includes(`python/include/python${fx.tag}/Python.h`));
  assert.deepEqual(names.filter((n) => /(^|\/)(__pycache__|test|tests|idle_test)\//.test(n)), []);
  assert.deepEqual(names.filter((n) => n.endsWith(".pyc") || n.endsWith(".a")), []);
  assert.ok(names.some((n) => /\/config-[^/]+\/Makefile$/.test(n)));
  assert.deepEqual(names.filter((n) => n.startsWith(`${lib}/site-packages/`)), [
    `${lib}/site-packages/`,
    `${lib}/site-packages/README.txt`,
  ]);

  assert.equal(gz.bodies.size, 1);
  const [text] = [...gz.bodies.values()].map((b) => decoder.decode(b));
  assert.match(text, /'\/install\//);
  assert.ok(!text.includes("/root/.pyenv"));
  if (fx.sourcePrefix !== "/install") assert.ok(!text.includes(`'${fx.sourcePrefix}/`));
});

Deno.test("fixture SHA256SUMS lists every archive with its digest", async () => {
  const fx = await fixtures();
  const lines = (await Deno.readTextFile(fx.sha256sums)).trimEnd().split("\n");
  const listed = new Map(lines.map((l) => {
    const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(l);
    assert.ok(m, `bad line ${JSON.stringify(l)}`);
    return [m[2], m[1]];
  }));
  assert.equal(listed.size, 3);
  for (const path of [fx.gz, fx.zst, fx.full]) {
    const actual = await sha256(path);
    assert.equal(listed.get(path.slice(fx.dir.length + 1)), actual, path);
    assert.equal(fx.sha256[path], actual, path);
  }
});

Deno.test("fixture full archive has PYTHON.json, install/, build/, licenses/ and a bad stdlib file", async () => {
  const fx = await fixtures();
  const bad = `python/install/lib/python${fx.tag}/badsyntax_fixture/bad_syntax.py`;
  const full = await list(fx.full, (n) => n === "python/PYTHON.json" || n === bad);
  const names = full.headers.map((h) => h.name);
  const meta = JSON.parse(decoder.decode(full.bodies.get("python/PYTHON.json")));
  assert.equal(meta.python_version, fx.version);
  assert.equal(meta.target_triple, fx.triple);
  assert.equal(meta.python_exe, `install/bin/python${fx.tag}`);
  assert.ok(names.includes(`python/${meta.python_exe}`));
  assert.ok(names.some((n) => n.startsWith("python/build/") && !n.endsWith("/")));
  assert.ok(names.some((n) => n.startsWith("python/licenses/") && !n.endsWith("/")));

  const installOnly = (await list(fx.gz)).headers.map((h) => h.name);
  const install = names
    .filter((n) => n.startsWith("python/install/") && !n.includes("/badsyntax_fixture/"))
    .map((n) => n.replace("python/install/", "python/"));
  assert.deepEqual(install, installOnly);

  const compile = new Deno.Command(fx.pythonSource, {
    args: ["-I", "-B", "-c", "import sys; compile(sys.stdin.read(), 'bad_syntax.py', 'exec')"],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = compile.stdin.getWriter();
  await w.write(full.bodies.get(bad)!);
  await w.close();
  const result = await compile.output();
  assert.ok(!result.success);
  assert.match(decoder.decode(result.stderr), /SyntaxError/);
});

Deno.test("fixture interpreter runs from an extracted archive and loads its own libpython", async () => {
  const fx = await fixtures();
  const dir = await Deno.makeTempDir({ prefix: "pyprime-fixture-run-" });
  try {
    const tar = await new Deno.Command("tar", { args: ["-xzf", fx.gz, "-C", dir] }).output();
    assert.ok(tar.success, decoder.decode(tar.stderr));
    const root = await Deno.realPath(join(dir, "python"));
    // Only what the source build has: a build without _ssl cannot ship ssl.
    const modules = fx.modules;
    assert.ok(modules.includes("json"));
    const out = await new Deno.Command(join(root, "bin", "python3"), {
      args: [
        "-I",
        "-B",
        "-c",
        `import sys, ${modules.join(", ")}\n` +
        "print(sys.prefix)\n" +
        "print(''.join(l for l in open('/proc/self/maps') if 'libpython' in l))",
      ],
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    }).output();
    assert.ok(out.success, decoder.decode(out.stderr));
    const [prefix, ...maps] = decoder.decode(out.stdout).trim().split("\n");
    assert.equal(prefix, root);
    const loaded = [...new Set(maps.map((l) => l.trim().split(/\s+/).at(-1)!))];
    if (fx.shared) {
      assert.deepEqual(loaded, [join(root, "lib", `libpython${fx.tag}.so.1.0`)]);
      assert.ok(fx.runpath.patched.includes(`python/bin/python${fx.tag}`));
      assert.deepEqual(fx.notes, []);
    } else {
      assert.deepEqual(loaded, []);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buildFixtures reuses a complete build with the same inputs", async () => {
  const fx = await fixtures();
  const started = performance.now();
  const again = await buildFixtures({ python: fx.pythonSource, outDir: FIXTURE_CACHE });
  assert.equal(again.cached, true);
  assert.deepEqual(again.sha256, fx.sha256);
  assert.ok(performance.now() - started < 5000);
});

Deno.test("task fixtures prints a few summary lines, and the whole description only with --json", async () => {
  const fx = await fixtures();
  const script = join(REPO_ROOT, "scripts", "build_fixtures.ts");
  const base = ["run", "-A", script, "--python", fx.pythonSource, "--out", FIXTURE_CACHE];
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  const plain = await new Deno.Command(Deno.execPath(), { args: base }).output();
  assert.equal(plain.code, 0, decode(plain.stderr));
  assert.equal(decode(plain.stdout), "");
  const lines = decode(plain.stderr).trim().split("\n");
  assert.ok(lines.length <= 8, lines.join("\n"));
  assert.match(lines.join("\n"), /MiB .*install_only\.tar\.zst/);
  const json = await new Deno.Command(Deno.execPath(), { args: [...base, "--json"] }).output();
  assert.equal(json.code, 0);
  assert.equal(JSON.parse(decode(json.stdout)).version, fx.version);
});
