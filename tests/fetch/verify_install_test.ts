/**
 * Every source is verified, or loudly not: `pyprime install FILE|-` against the
 * embedded catalog's digest of the file name, a `SHA256SUMS` beside the file, or
 * `--sha256`; otherwise one warning, or a refusal under `--require-hashes`.
 *
 * @module
 */
import { uvEntry } from "../support/catalog.ts";
import { basename, join } from "node:path";
import { assert, assertEquals, assertMatch, assertNotMatch } from "../support/assert.ts";
import { type CliResult, runCli } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { listTree } from "../support/helpers.ts";

const fx = await fixtures();
const SHA = fx.sha256[fx.gz];
/** A real PBS file name (release 20240107) whose embedded catalog digest is this one. */
const REAL_NAME = "cpython-3.12.1+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz";
const REAL_SHA = "74e330b8212ca22fd4d9a2003b9eec14892155566738febc8e5e572f267b9472";

interface Place {
  home: string;
  dir: string;
  /** A folder with a copy of the fixture and nothing else. */
  folder: string;
  archive: string;
  remove(): Promise<void>;
}

async function place(name = basename(fx.gz)): Promise<Place> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-verify-" });
  const folder = join(home, "downloads");
  await Deno.mkdir(folder);
  const archive = join(folder, name);
  await Deno.copyFile(fx.gz, archive);
  return {
    home,
    dir: join(home, "pythons"),
    folder,
    archive,
    remove: () => Deno.remove(home, { recursive: true }),
  };
}

function install(
  p: Place,
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<CliResult> {
  return runCli(
    ["--json", "install", ...args, "--install-dir", p.dir, "--no-compile-bytecode", "--no-bin"],
    { env: { HOME: p.home, ...env }, stdin },
  );
}

function warnings(r: CliResult): string[] {
  return r.stderr.split("\n").filter((l) => l.startsWith("warning:"));
}

/** Nothing extracted: the install dir holds the lock and an empty staging folder. */
async function assertNothingExtracted(p: Place): Promise<void> {
  assertEquals(await listTree(p.dir), [".lock", ".staging"]);
}

Deno.test("install FILE with no digest anywhere warns once, first, and --json says verified none", async () => {
  const p = await place();
  const r = await install(p, [p.archive]);
  assertEquals(r.code, 0, r.stderr);
  const [warning, ...more] = warnings(r);
  assertEquals(more, [], r.stderr);
  assertMatch(warning, /is not verified .*SHA256SUMS.*runs its bin\/python3/);
  assertMatch(r.stderr, /^hint: pass --sha256 HEX .*--require-hashes/m);
  // The warning is the first line: nothing of the archive ran before it.
  assertEquals(r.stderr.split("\n")[0], warning);
  const [outcome] = JSON.parse(r.stdout);
  assertEquals([outcome.verified, outcome.sha256], ["none", SHA]);
  await p.remove();
});

Deno.test("install FILE uses the SHA256SUMS beside it, and refuses bytes it does not list", async () => {
  const p = await place();
  const sums = join(p.folder, "SHA256SUMS");
  await Deno.writeTextFile(
    sums,
    `${"0".repeat(64)}  other.tar.gz\n${SHA}  ${basename(p.archive)}\n`,
  );
  const ok = await install(p, [p.archive]);
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(warnings(ok), []);
  assertEquals(JSON.parse(ok.stdout)[0].verified, "sha256sums");

  const wrong = "f".repeat(64);
  await Deno.writeTextFile(sums, `${wrong} *${basename(p.archive)}\n`);
  const bad = await install(p, [p.archive, "--reinstall"]);
  assertEquals(bad.code, 1, bad.stderr);
  assertMatch(bad.stderr, new RegExp(`^error: Checksum mismatch .*expected sha256 ${wrong}`, "m"));
  // --json: the failure is the document.
  assertMatch(JSON.parse(bad.stdout).error.message, /^Checksum mismatch /);

  // --sha256 wins over SHA256SUMS.
  const forced = await install(p, [p.archive, "--reinstall", "--sha256", SHA]);
  assertEquals(forced.code, 0, forced.stderr);
  assertEquals(JSON.parse(forced.stdout)[0].verified, "option");
  await p.remove();
});

Deno.test("install FILE named like a real PBS release is checked against the embedded catalog", async () => {
  const p = await place(REAL_NAME);
  const r = await install(p, [p.archive, "--require-hashes"]);
  assertEquals(r.code, 1, r.stderr);
  assertMatch(
    r.stderr,
    new RegExp(
      `^error: Checksum mismatch for ${
        REAL_NAME.replaceAll("+", "\\+")
      }: expected sha256 ${REAL_SHA}, got ${SHA}`,
      "m",
    ),
  );
  assertEquals(warnings(r), []);
  await assertNothingExtracted(p);
  await p.remove();
});

Deno.test("install --require-hashes and PYPRIME_REQUIRE_HASHES=1 refuse an unverified FILE or stdin before extracting", async () => {
  const p = await place();
  for (
    const [args, env, stdin] of [
      [[p.archive, "--require-hashes"], {}, undefined],
      [[p.archive], { PYPRIME_REQUIRE_HASHES: "1" }, undefined],
      [["-"], { PYPRIME_REQUIRE_HASHES: "yes" }, p.archive],
    ] as const
  ) {
    const r = await install(p, [...args], env, stdin);
    assertEquals(r.code, 1, r.stderr);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assertEquals(errors.length, 1, r.stderr);
    assertMatch(errors[0], /^error: Refusing to install .*: not verified .* hashes are required/);
    assertMatch(r.stderr, /^hint: pass --sha256 HEX/m);
    assertEquals(JSON.parse(r.stdout).error.exit_code, 1);
    await assertNothingExtracted(p);
  }
  const stdin = await install(p, ["-", "--require-hashes", "--sha256", SHA], {}, p.archive);
  assertEquals(stdin.code, 0, stdin.stderr);
  assertEquals(JSON.parse(stdin.stdout)[0].verified, "option");
  const off = await install(p, [p.archive, "--reinstall"], { PYPRIME_REQUIRE_HASHES: "0" });
  assertEquals(off.code, 0, off.stderr);
  const typo = await install(p, [p.archive], { PYPRIME_REQUIRE_HASHES: "sure" });
  assertEquals(typo.code, 2, typo.stderr);
  assertMatch(typo.stderr, /error: PYPRIME_REQUIRE_HASHES must be 0 or 1, not sure/);
  await p.remove();
});

Deno.test("install of the fixtures verifies them: a custom catalog lists them, their folder has SHA256SUMS", async () => {
  const p = await place();
  const catalog = join(p.home, "catalog.json");
  const file = basename(fx.gz);
  const prefix = "https://example.invalid/";
  const x = uvEntry({ version: fx.version, build: "20991231", file, sha256: SHA, prefix });
  await Deno.writeTextFile(catalog, JSON.stringify({ x }));
  const r = await install(p, [p.archive, "--catalog", catalog, "--require-hashes"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout)[0].verified, "catalog");
  const sums = await install(p, [fx.zst, "--require-hashes", "--reinstall"]);
  assertEquals(sums.code, 0, sums.stderr);
  assertEquals(JSON.parse(sums.stdout)[0].verified, "sha256sums");
  assertNotMatch(sums.stderr, /not verified/);
  assert(fx.sha256[fx.zst] === JSON.parse(sums.stdout)[0].sha256);
  await p.remove();
});
