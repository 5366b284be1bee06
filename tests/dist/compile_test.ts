/**
 * Tests of scripts/compile.ts. This machine has no denort runtime and no route to
 * dl.deno.land, so the real build is exercised with the `deno` binary standing in for
 * denort (same ELF format, so `deno compile` accepts it) and the offline paths with an
 * HTTPS proxy on a closed loopback port, which fails fast and the same way everywhere.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  binaryTarget,
  BuildError,
  cachedDenortPath,
  compileFlags,
  downloadFailureCause,
  forbiddenFlags,
  hostTarget,
  locateDenort,
  noDenortMessage,
  parseArgs,
  TARGETS,
} from "../../scripts/compile.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = join(ROOT, "scripts", "compile.ts");
const GOOD_ENTRY = "const n: number = 1;\nconsole.log(n);\n";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** A loopback port nothing listens on: connecting to it is refused at once. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The environment of this process without the given variables, plus `extra`. */
function envWith(extra: Record<string, string>, drop: string[] = []): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of [...drop, "NO_PROXY", "no_proxy"]) delete env[name];
  return { ...env, ...extra };
}

async function run(args: string[], env: Record<string, string>): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    // The offline paths must fail fast; a hang is a failure, not a slow pass.
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "pyprime-compile-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeConfig(dir: string, flags: string): Promise<string> {
  const path = join(dir, "deno.json");
  await Deno.writeTextFile(
    path,
    JSON.stringify({ tasks: { pyprime: `deno run ${flags} main.ts` } }),
  );
  return path;
}

Deno.test("compile.ts --check passes on main.ts with the pyprime permission set", async () => {
  const ran = await run(["run", "-A", SCRIPT, "--check"], envWith({}, ["DENORT_BIN"]));
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stderr, /^ok: deno check main\.ts$/m);
  for (const target of TARGETS) {
    assert.match(ran.stderr, new RegExp(`^ok: deno compile accepts the build for ${target} `, "m"));
  }
  assert.match(ran.stderr, /^ok: permission flags .*--allow-env=/m);
});

Deno.test("compile.ts --check fails with a one-line verdict when the entry does not type check", async () => {
  await withTempDir(async (dir) => {
    const entry = join(dir, "bad.ts");
    await Deno.writeTextFile(entry, 'const n: number = "one";\nconsole.log(n);\n');
    const ran = await run(["run", "-A", SCRIPT, "--check", "--entry", entry], envWith({}));
    assert.equal(ran.code, 1);
    assert.match(ran.stderr, /TS2322/);
    assert.equal(ran.stderr.trim().split("\n").at(-1), `error: type check of ${entry} failed`);
  });
});

Deno.test("compile.ts --check catches a permission flag deno compile rejects", async () => {
  await withTempDir(async (dir) => {
    const entry = join(dir, "ok.ts");
    await Deno.writeTextFile(entry, GOOD_ENTRY);
    const config = await writeConfig(dir, "--no-prompt --allow-read --allow-env=NOT=VALID");
    const ran = await run([
      "run",
      "-A",
      SCRIPT,
      "--check",
      "--entry",
      entry,
      "--target",
      "x86_64-unknown-linux-gnu",
      "--permissions-from",
      config,
    ], envWith({}));
    assert.equal(ran.code, 1);
    assert.match(ran.stderr, /invalid env var name: 'NOT=VALID'/);
    assert.match(
      ran.stderr.trim(),
      /error: deno compile rejects the build configuration for x86_64-unknown-linux-gnu$/,
    );
  });
});

for (
  const grant of [
    "-A",
    "--allow-all",
    "--allow-ffi",
    "--allow-ffi=./lib.so",
    "--allow-import",
    "--permission-set=ci",
  ]
) {
  Deno.test(`compile.ts refuses to build when the pyprime task has ${grant}`, async () => {
    await withTempDir(async (dir) => {
      const config = await writeConfig(dir, `--no-prompt --allow-read ${grant}`);
      for (const args of [[], ["--check"]]) {
        const ran = await run(
          ["run", "-A", SCRIPT, ...args, "--permissions-from", config],
          envWith({}),
        );
        assert.equal(ran.code, 1);
        assert.equal(
          ran.stderr.trim(),
          `error: refusing to build: the "pyprime" task in deno.json grants ${grant}; ` +
            "release binaries never get -A, --allow-all, --allow-ffi, --allow-import or -P",
        );
      }
    });
  });
}

Deno.test("forbiddenFlags finds grants in short clusters and leaves the real set alone", () => {
  assert.deepEqual(forbiddenFlags(["-RWA", "-RW", "-I", "--allow-import=x.com"]), [
    "-RWA",
    "-I",
    "--allow-import=x.com",
  ]);
  assert.deepEqual(forbiddenFlags(["--no-prompt", "--allow-read", "--allow-env=A,B"]), []);
  assert.throws(() => compileFlags(["--allow-all"]), BuildError);
  assert.deepEqual(compileFlags(["--no-prompt", "--watch", "--allow-read"]), [
    "--no-prompt",
    "--allow-read",
  ]);
});

Deno.test("compile.ts without denort and without network fails with one line naming the three ways out", async () => {
  await withTempDir(async (dir) => {
    const denoDir = join(dir, "deno_dir");
    const outDir = join(dir, "dist");
    const proxy = `http://127.0.0.1:${closedPort()}`;
    const env = envWith({ DENO_DIR: denoDir, HTTPS_PROXY: proxy, HTTP_PROXY: proxy }, [
      "DENORT_BIN",
    ]);
    const ran = await run(["run", "-A", SCRIPT, "--out-dir", outDir], env);
    assert.equal(ran.code, 1);
    const lines = ran.stderr.trim().split("\n");
    assert.equal(lines.length, 1, ran.stderr);
    assert.match(
      lines[0],
      /^error: no denort runtime for x86_64-unknown-linux-gnu here and none can be downloaded from https:\/\/dl\.deno\.land \(.*Connection refused.*\); /,
    );
    assert.match(lines[0], /build with network access/);
    assert.match(lines[0], /set DENORT_BIN=\/path\/to\/denort/);
    const cacheDir = join(denoDir, "dl", "release", `v${Deno.version.deno}`);
    assert.ok(lines[0].endsWith(`put denort-x86_64-unknown-linux-gnu.zip into ${cacheDir}/`));
    await assert.rejects(Deno.stat(outDir), Deno.errors.NotFound);
  });
});

Deno.test("downloadFailureCause recognises deno compile failing to download denort", async () => {
  await withTempDir(async (dir) => {
    const entry = join(dir, "ok.ts");
    await Deno.writeTextFile(entry, GOOD_ENTRY);
    const proxy = `http://127.0.0.1:${closedPort()}`;
    const env = envWith({ DENO_DIR: join(dir, "deno_dir"), HTTPS_PROXY: proxy }, ["DENORT_BIN"]);
    const ran = await run(
      ["compile", "--no-config", "--no-check", "--output", join(dir, "out"), entry],
      env,
    );
    assert.equal(ran.code, 1);
    const cause = downloadFailureCause(ran.stderr);
    assert.ok(cause !== undefined, `not recognised:\n${ran.stderr}`);
    assert.match(cause, /Connection refused/);
    const message = noDenortMessage("x86_64-unknown-linux-gnu", join(dir, "deno_dir"), cause);
    assert.ok(!message.includes("\n"));
    assert.equal(
      downloadFailureCause("error: Type checking failed.\nTS2322 [ERROR]: …"),
      undefined,
    );
  });
});

Deno.test("compile.ts with DENORT_BIN builds the host target and writes SHA256SUMS", async () => {
  const host = hostTarget();
  assert.ok(host, `${Deno.build.target} is not a pyprime target`);
  await withTempDir(async (dir) => {
    const entry = join(dir, "ok.ts");
    await Deno.writeTextFile(entry, GOOD_ENTRY);
    const outDir = join(dir, "dist");
    // The deno CLI has the same container format as denort, so deno compile accepts it as
    // the runtime; the binary it makes is a deno CLI, but the pipeline is the real one.
    const env = envWith({ DENORT_BIN: Deno.execPath() });
    const ran = await run(["run", "-A", SCRIPT, "--entry", entry, "--out-dir", outDir], env);
    assert.equal(ran.code, 0, ran.stderr);
    const names = [...Deno.readDirSync(outDir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["SHA256SUMS", `pyprime-${host}`]);
    const bytes = await Deno.readFile(join(outDir, `pyprime-${host}`));
    const digest = createHash("sha256").update(bytes).digest("hex");
    assert.equal(
      await Deno.readTextFile(join(outDir, "SHA256SUMS")),
      `${digest}  pyprime-${host}\n`,
    );
    assert.equal(binaryTarget(bytes.subarray(0, 64)), host);
  });
});

Deno.test("compile.ts refuses DENORT_BIN with several targets", async () => {
  const env = envWith({ DENORT_BIN: Deno.execPath() });
  const ran = await run(
    ["run", "-A", SCRIPT, "--target", "x86_64-apple-darwin", "--target", "aarch64-apple-darwin"],
    env,
  );
  assert.equal(ran.code, 1);
  assert.equal(
    ran.stderr.trim(),
    "error: DENORT_BIN is one runtime for one target; pass a single --target with it",
  );
});

Deno.test("locateDenort refuses a DENORT_BIN built for another target", async () => {
  await withTempDir(async (dir) => {
    const fake = join(dir, "denort");
    const header = new Uint8Array(64);
    header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]); // ELF, 64-bit, little endian
    header.set([183, 0], 18); // e_machine = aarch64
    await Deno.writeFile(fake, header);
    assert.equal(binaryTarget(header), "aarch64-unknown-linux-gnu");
    await assert.rejects(
      locateDenort("x86_64-unknown-linux-gnu", { denortBin: fake, denoDir: dir }),
      (e: Error) =>
        e instanceof BuildError && e.message.includes("runtime for aarch64-unknown-linux-gnu"),
    );
    assert.deepEqual(
      await locateDenort("aarch64-unknown-linux-gnu", { denortBin: fake, denoDir: dir }),
      { kind: "bin", path: fake },
    );
  });
});

Deno.test("locateDenort finds denort-<target>.zip in deno's download cache", async () => {
  await withTempDir(async (dir) => {
    const zip = cachedDenortPath(dir, "aarch64-apple-darwin");
    assert.equal(
      zip,
      join(dir, "dl", "release", `v${Deno.version.deno}`, "denort-aarch64-apple-darwin.zip"),
    );
    assert.equal((await locateDenort("aarch64-apple-darwin", { denoDir: dir })).kind, "download");
    await Deno.mkdir(join(zip, ".."), { recursive: true });
    await Deno.writeFile(zip, new Uint8Array([0x50, 0x4b, 3, 4]));
    assert.deepEqual(await locateDenort("aarch64-apple-darwin", { denoDir: dir }), {
      kind: "cache",
      path: zip,
    });
  });
});

Deno.test("binaryTarget reads Mach-O headers and ignores other files", () => {
  const macho = new Uint8Array(32);
  const view = new DataView(macho.buffer);
  view.setUint32(0, 0xfeedfacf, true);
  view.setUint32(4, 0x0100000c, true);
  assert.equal(binaryTarget(macho), "aarch64-apple-darwin");
  view.setUint32(4, 0x01000007, true);
  assert.equal(binaryTarget(macho), "x86_64-apple-darwin");
  assert.equal(binaryTarget(new TextEncoder().encode("#!/bin/sh\necho not a binary\n")), undefined);
});

Deno.test("parseArgs takes repeated targets and rejects unknown ones", () => {
  const request = parseArgs(["--target", "aarch64-apple-darwin", "--target=x86_64-apple-darwin"]);
  assert.deepEqual(request.targets, ["aarch64-apple-darwin", "x86_64-apple-darwin"]);
  assert.equal(request.check, false);
  assert.throws(() => parseArgs(["--target", "x86_64-pc-windows-msvc"]), /unknown target/);
  assert.throws(() => parseArgs(["--bogus"]), /unknown option "--bogus"/);
  assert.throws(() => parseArgs(["--target"]), /--target needs a value/);
});
