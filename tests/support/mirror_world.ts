/**
 * A PBS-layout mirror world for tests against real servers (nginx, tinyproxy): a temp
 * HOME with a mirror folder holding the fixture and its release's SHA256SUMS, a catalog
 * in uv's format naming it, and helpers to run `pyprime install` over it.
 *
 * @module
 */
import { basename, join } from "node:path";
import { BUILD_DATE } from "../../scripts/build_fixtures.ts";
import { DOWNLOAD_ENV } from "../../src/fetch/tuning.ts";
import { minorDirName } from "../../src/install/minor_links.ts";
import { assertEquals, assertMatch } from "./assert.ts";
import { type CliResult, runCli } from "./cli.ts";
import { uvEntry } from "./catalog.ts";
import { fixtures } from "./fixtures.ts";
import { names } from "./helpers.ts";
import { type Nginx, type NginxOptions, startNginx } from "./nginx.ts";

/** The fixture set the world serves. */
export const fx = await fixtures();
/** The archive the mirror serves. */
export const ARCHIVE = basename(fx.zst);
/** Its installation key. */
export const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
/** The archive's URL path as pyprime requests it (`+` encoded, as in PBS's URLs). */
export const ARCHIVE_URI = `/${BUILD_DATE}/${encodeURIComponent(ARCHIVE)}`;
/** Its size in bytes. */
export const SIZE = fx.sizes[fx.zst];
/** Its sha256. */
export const SHA = fx.sha256[fx.zst];

/** Escapes `text` for a RegExp. */
export function re(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

/** A temp HOME with a PBS-layout mirror folder and a catalog naming the fixture. */
export interface World {
  home: string;
  dir: string;
  cache: string;
  mirror: string;
  catalog: string;
  remove(): Promise<void>;
}

/** `sha256: null` makes the catalog carry no digest, so the mirror's SHA256SUMS is used. */
export async function world(sha256: string | null = SHA): Promise<World> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-nginx-test-" });
  const mirror = join(home, "mirror");
  const release = join(mirror, BUILD_DATE);
  await Deno.mkdir(release, { recursive: true });
  await Deno.copyFile(fx.zst, join(release, ARCHIVE));
  await Deno.copyFile(fx.sha256sums, join(release, "SHA256SUMS"));
  const catalog = join(home, "download-metadata.json");
  await Deno.writeTextFile(
    catalog,
    JSON.stringify({
      [KEY]: uvEntry({ version: fx.version, build: BUILD_DATE, file: ARCHIVE, sha256 }),
    }),
  );
  return worldOf(home, mirror, catalog);
}

/** The world of a temp HOME: its install dir and cache, the mirror and catalog given. */
export function worldOf(home: string, mirror: string, catalog: string): World {
  return {
    home,
    dir: join(home, "pythons"),
    cache: join(home, "cache"),
    mirror,
    catalog,
    remove: () => Deno.remove(home, { recursive: true }),
  };
}

/** `pyprime --json install ARGS` into the world's dirs, fast retries, no bytecode. */
export function install(
  w: World,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return runCli([
    "--json",
    "install",
    ...args,
    ...["--catalog", w.catalog, "--platform", "linux-x86_64-gnu", "--install-dir", w.dir],
    "--no-compile-bytecode",
    "--no-bin",
  ], {
    env: { HOME: w.home, [DOWNLOAD_ENV.backoff]: "20", [DOWNLOAD_ENV.timeout]: "10", ...env },
  });
}

/** Runs `fn` with nginx serving the world's mirror; nginx is stopped afterwards. */
export async function withNginx<T>(
  w: World,
  fn: (nginx: Nginx) => Promise<T>,
  options: Partial<NginxOptions> = {},
): Promise<T> {
  const nginx = await startNginx({ root: w.mirror, ...options });
  try {
    return await fn(nginx);
  } finally {
    await nginx.stop();
  }
}

/** Exactly one `error:` line matching every pattern, a `hint:` line, exit 1. */
export function assertOneError(r: CliResult, ...patterns: RegExp[]): string {
  assertEquals(r.code, 1, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assertEquals(errors.length, 1, r.stderr);
  for (const p of patterns) assertMatch(errors[0], p);
  assertMatch(r.stderr, /^hint: /m);
  return errors[0];
}

/** The installation of KEY is there and its interpreter runs. */
export async function assertInstalled(w: World): Promise<void> {
  // The installation and its minor-version link.
  assertEquals(
    (await names(w.dir)).filter((n) => !n.startsWith(".")),
    [KEY, minorDirName(KEY)!].sort(),
  );
  assertEquals(await names(join(w.dir, ".staging")), []);
  const out = await new Deno.Command(join(w.dir, KEY, "bin", "python3"), {
    args: ["-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
    clearEnv: true,
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(out.stdout).trim(), fx.version);
}
