/**
 * Installing a pack (an archive that ships bytecode): the shipped `.pyc` are checked and
 * kept, only the stale ones compiled, the untrustworthy ones removed; the relocated
 * interpreter imports from them; every source kind works.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { join } from "node:path";
import { runCli } from "../support/cli.ts";
import { startFaultServer } from "../support/fault_server.ts";
import { startNginx } from "../support/nginx.ts";
import { fixtures } from "../support/fixtures.ts";
import { names } from "../support/helpers.ts";

const fx = await fixtures();
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
const PACK = `cpython-${fx.version}+pyprime-${fx.triple}-install_only.tar.zst`;
const TAG = `cpython-${fx.tag.replace(".", "")}`;

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, {
    args,
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

/** A compiled install in one folder and its pack in `packs/`. */
async function packed() {
  const home = await Deno.makeTempDir({ prefix: "pyprime-ipack-" });
  const env = { HOME: home };
  const first = join(home, "first");
  const r = await runCli(["install", fx.zst, "--install-dir", first, "--no-bin"], { env });
  assertEquals(r.code, 0, r.stderr);
  const packs = join(home, "packs");
  await Deno.mkdir(packs);
  const p = await runCli(["pack", join(first, KEY)], { env, cwd: packs });
  assertEquals(p.code, 0, p.stderr);
  return { home, env, packs, pack: join(packs, PACK), sha256: p.stdout.slice(0, 64) };
}

async function pycMtimes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".pyc")) out.set(p, (await Deno.lstat(p)).mtime!.getTime());
    }
  };
  await walk(root);
  return out;
}

Deno.test("installing a pack elsewhere reuses its bytecode and compiles only the rewritten sysconfig data", async () => {
  const { home, env, pack } = await packed();
  const dir = join(home, "elsewhere", "pythons");
  const r = await runCli(["install", pack, "--install-dir", dir, "--no-bin", "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const [outcome] = JSON.parse(r.stdout);
  assertEquals(outcome.key, KEY);
  const { bytecode } = outcome;
  assertEquals(bytecode.failed, []);
  assertEquals(bytecode.compiled, 1, "only _sysconfigdata_*.py changed");
  assertEquals(bytecode.reused, bytecode.files - 1);
  assertEquals(bytecode.removed, 0);
  const text = await runCli(["install", pack, "--install-dir", join(home, "third"), "--no-bin"], {
    env,
  });
  assertMatch(text.stderr, /^Bytecode reused [\d,]+, compiled 1 file in \d+\.\d\ds$/m);

  // The shipped .pyc were kept as they came (the pack's clamped mtimes), not rewritten.
  const root = join(dir, KEY);
  const mtimes = await pycMtimes(root);
  const times = new Set(
    [...mtimes].filter(([p]) => !p.includes("_sysconfigdata_")).map(([, t]) => t),
  );
  assertEquals(times.size, 1, "every shipped .pyc has the pack's one clamped mtime");

  // The relocated interpreter loads them (python -v says where code comes from), writes
  // nothing, and names the new location in __file__, co_filename and tracebacks.
  const python = join(root, "bin", "python3");
  const verbose = await run(python, ["-v", "-c", "import json.decoder, email.parser"]);
  assertEquals(verbose.code, 0, verbose.err);
  assertMatch(
    verbose.err,
    new RegExp(
      `code object from '${root}/lib/python${fx.tag}/json/__pycache__/decoder\\.${TAG}\\.pyc'`,
    ),
  );
  assert(!/^# wrote /m.test(verbose.err), "the interpreter compiled something");
  assertEquals(await pycMtimes(root), mtimes, "a .pyc was written");
  const tb = await run(python, [
    "-c",
    "import json.decoder as d, sys\nprint(d.__file__)\nprint(d.JSONDecoder.decode.__code__.co_filename)\n" +
    "import json\njson.loads('{')",
  ]);
  const file = `${root}/lib/python${fx.tag}/json/decoder.py`;
  assertEquals(tb.out, `${file}\n${file}\n`);
  assertMatch(tb.err, new RegExp(`File "${file}", line \\d+, in raw_decode`));
  const sysconfig = await run(python, [
    "-c",
    "import sysconfig; print(sysconfig.get_config_var('prefix'))",
  ]);
  assertEquals(sysconfig.out.trim(), root);
  await Deno.remove(home, { recursive: true });
});

Deno.test("install removes a shipped .pyc with another magic number or without a source, recompiles stale ones and keeps a checked-hash one", async () => {
  const { home, env, pack } = await packed();
  const x = join(home, "x");
  await Deno.mkdir(x);
  assertEquals((await run("tar", ["--zstd", "-xf", pack, "-C", x])).code, 0);
  const lib = join(x, "python", "lib", `python${fx.tag}`);
  const bad = join(lib, "json", "__pycache__", `decoder.${TAG}.pyc`);
  const bytes = await Deno.readFile(bad);
  bytes[0] ^= 0xff; // another interpreter's magic number
  await Deno.writeFile(bad, bytes);
  await Deno.writeFile(join(lib, "json", "__pycache__", `gone.${TAG}.pyc`), bytes.subarray(0, 64));
  await Deno.writeFile(join(lib, "lone.pyc"), bytes.subarray(0, 64)); // importable without source
  // A source newer than its .pyc (stale), and a valid checked-hash .pyc (kept as it is).
  await Deno.utime(join(lib, "json", "encoder.py"), 1e9, 1e9);
  const scanner = join(lib, "json", "__pycache__", `scanner.${TAG}.pyc`);
  const hashed = await run(join(x, "python", "bin", "python3"), [
    "-c",
    "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], " +
    "invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)",
    join(lib, "json", "scanner.py"),
    scanner,
  ]);
  assertEquals(hashed.code, 0, hashed.err);
  const evil = join(home, "evil.tar.gz");
  assertEquals((await run("tar", ["-czf", evil, "-C", x, "python"])).code, 0);

  const dir = join(home, "pythons");
  const r = await runCli(["install", evil, "--install-dir", dir, "--no-bin", "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const { bytecode } = JSON.parse(r.stdout)[0];
  assertEquals(bytecode.compiled, 3, "the sysconfig data, the bad-magic decoder, the encoder");
  assertEquals(bytecode.removed, 2);
  const stdlib = join(dir, KEY, "lib", `python${fx.tag}`);
  const fixed = await Deno.readFile(join(stdlib, "json", "__pycache__", `decoder.${TAG}.pyc`));
  assertEquals(fixed[0], bytes[0] ^ 0xff, "recompiled with the interpreter's magic");
  const encoder = await Deno.readFile(join(stdlib, "json", "__pycache__", `encoder.${TAG}.pyc`));
  assertEquals(
    new DataView(encoder.buffer).getUint32(8, true),
    1e9,
    "recompiled for the new mtime",
  );
  const kept = await Deno.readFile(join(stdlib, "json", "__pycache__", `scanner.${TAG}.pyc`));
  assertEquals(kept, await Deno.readFile(scanner), "the checked-hash .pyc was kept as shipped");
  for (const gone of [join("json", "__pycache__", `gone.${TAG}.pyc`), "lone.pyc"]) {
    assert(!(await Deno.lstat(join(stdlib, gone)).then(() => true, () => false)), gone);
  }
  await Deno.remove(home, { recursive: true });
});

Deno.test("a pack installs from standard input, from a URL and from a folder of packs by its SHA256SUMS", async () => {
  const { home, env, pack, packs, sha256 } = await packed();
  const fromStdin = await runCli(["install", "-", "--install-dir", join(home, "a"), "--no-bin"], {
    env,
    stdin: pack,
  });
  assertEquals(fromStdin.code, 0, fromStdin.stderr);
  assertMatch(fromStdin.stderr, /^Bytecode reused /m);

  const sums = await Deno.readTextFile(join(packs, "SHA256SUMS"));
  const expected = sums.split("\n").find((l) => l.endsWith(`  ${PACK}`))!.slice(0, 64);
  assertEquals(expected, sha256);
  const server = await startFaultServer({ root: packs });
  try {
    const url = `${server.url}/${encodeURIComponent(PACK)}`;
    const args = [
      "install",
      url,
      "--sha256",
      expected,
      "--install-dir",
      join(home, "b"),
      "--no-bin",
    ];
    const fromUrl = await runCli(args, { env });
    assertEquals(fromUrl.code, 0, fromUrl.stderr);
    assertMatch(fromUrl.stderr, /^Bytecode reused /m);
    const wrong = await runCli(
      ["install", url, "--sha256", "0".repeat(64), "--install-dir", join(home, "c"), "--no-bin"],
      { env },
    );
    assertEquals(wrong.code, 1, "a pack that does not match its SHA256SUMS line is refused");
  } finally {
    await server.close();
  }
  const fromFolder = await runCli(
    [
      "install",
      join(packs, PACK),
      "--sha256",
      expected,
      "--install-dir",
      join(home, "d"),
      "--no-bin",
    ],
    { env },
  );
  assertEquals(fromFolder.code, 0, fromFolder.stderr);
  await Deno.remove(home, { recursive: true });
});

Deno.test("a version request with a --mirror folder installs the pack its SHA256SUMS lists, and checks the name", async () => {
  const { home, env, pack, packs, sha256 } = await packed();
  const install = (mirror: string, dir: string, request = fx.tag, extra: string[] = []) =>
    runCli(
      [
        "install",
        request,
        "--mirror",
        mirror,
        "--install-dir",
        join(home, dir),
        "--no-bin",
        ...extra,
      ],
      { env },
    );
  // Offline and with --require-hashes: the folder alone answers, its SHA256SUMS vouches.
  const local = await install(packs, "a", fx.tag, ["--offline", "--require-hashes", "--json"]);
  assertEquals(local.code, 0, local.stderr);
  const [outcome] = JSON.parse(local.stdout);
  assertEquals([outcome.key, outcome.sha256, outcome.verified], [KEY, sha256, "sha256sums"]);
  assert(outcome.bytecode.reused > 0, "the pack's bytecode was kept");
  assertEquals((await Deno.readTextFile(join(home, "a", KEY, "BUILD"))).split("\n")[0], "local");
  const byKey = await install(`file://${packs}`, "b", `cpython-${fx.version}`, ["--offline"]);
  assertEquals(byKey.code, 0, byKey.stderr);

  // A name that promises another version is checked against the interpreter: refused.
  const [major, minor] = fx.tag.split(".").map(Number);
  const liar = PACK.replace(`cpython-${fx.version}+`, `cpython-${major}.${minor + 1}.0+`);
  await Deno.copyFile(pack, join(packs, liar));
  await Deno.writeTextFile(join(packs, "SHA256SUMS"), `${sha256}  ${liar}\n`, { append: true });
  const lie = await install(packs, "c", `${major}.${minor + 1}`, ["--offline"]);
  assertEquals(lie.code, 1, lie.stderr);
  assertMatch(
    lie.stderr,
    new RegExp(
      `^error: .*its interpreter is ${KEY}, not the cpython-${major}\\.${minor + 1}\\.0-`,
      "m",
    ),
  );
  assertEquals(await names(join(home, "c")), [".lock", ".staging"]);
  assertEquals(await names(join(home, "c", ".staging")), []);

  // Another archive under the pack's name no longer matches its line: refused.
  await Deno.copyFile(fx.zst, pack);
  const tampered = await install(packs, "d", fx.tag, ["--offline"]);
  assertEquals(tampered.code, 1, tampered.stderr);
  assertMatch(tampered.stderr, new RegExp(`^error: .*${sha256}`, "m"));
  assertEquals(await Deno.lstat(join(home, "d", KEY)).then(() => true, () => false), false);
  // A request no pack answers goes to the catalog, through the mirror's PBS layout.
  const other = await install(packs, "e", "3.8", ["--offline"]);
  assertEquals(other.code, 1, other.stderr);
  assertMatch(other.stderr, new RegExp(`Cannot read ${packs}/\\d{8}/cpython-3\\.8\\.`));
  await Deno.remove(home, { recursive: true });
});

Deno.test("an http(s) --mirror is not asked for packs: a version request costs no extra request", async () => {
  const { home, env, packs } = await packed();
  const nginx = await startNginx({ root: packs });
  try {
    const r = await runCli(
      ["install", fx.tag, "--mirror", nginx.url, "--install-dir", join(home, "a"), "--no-bin"],
      { env: { ...env, PYPRIME_VERSIONS_URL: `${nginx.url}/no-feed` } },
    );
    assertEquals(r.code, 1, "the catalog's archive is not in the folder");
    const uris = (await nginx.requests()).map((q) => q.uri);
    assert(!uris.includes("/SHA256SUMS"), uris.join(" "));
    assert(uris.some((u) => /^\/\d{8}\/cpython-/.test(u)), uris.join(" "));
  } finally {
    await nginx.stop();
  }
  await Deno.remove(home, { recursive: true });
});
