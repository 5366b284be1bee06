// deno-lint-ignore-file no-console
/**
 * Builds the release binaries: `deno compile` of `main.ts` for each target with the one
 * permission set of the `pyprime` task (never `-A`), then `dist/SHA256SUMS`.
 *
 * ```sh
 * deno run -A scripts/compile.ts                      # all four targets
 * deno run -A scripts/compile.ts --target x86_64-unknown-linux-gnu
 * deno run -A scripts/compile.ts --check              # validate, fetch nothing
 * ```
 *
 * `deno compile` glues the program onto a `denort` runtime for the target. It finds one
 * (1) at `DENORT_BIN`, (2) cached as `$DENO_DIR/dl/release/v<deno>/denort-<target>.zip`,
 * or (3) by downloading that zip from dl.deno.land. This script checks those three before
 * it builds anything, so an offline machine gets one line saying what to do instead of a
 * half-built `dist/` and a Rust backtrace.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { permissionFlags } from "./permissions.ts";

/** The platforms pyprime ships a binary for, as `deno compile --target` names them. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

/** One of {@link TARGETS}. */
export type Target = (typeof TARGETS)[number];

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DOWNLOAD_HOST = "https://dl.deno.land";
const PROBE_TIMEOUT_MS = 10_000;

/**
 * Permission flags a release binary must never carry: everything (`-A`), native code
 * (`--allow-ffi`), remote code (`--allow-import`, `-I`), and a permission set taken from
 * the config (`-P`), which would hide the real grants from this check.
 */
export const FORBIDDEN_FLAGS: readonly string[] = [
  "-A",
  "--allow-all",
  "--allow-ffi",
  "--allow-import",
  "-I",
  "-P",
  "--permission-set",
];

/**
 * Flags `deno run` takes that make no sense in a release binary (dev-loop only).
 * `--no-prompt` is not among them: `deno compile` accepts it.
 */
const RUN_ONLY_FLAGS: readonly string[] = ["--watch", "--watch-hmr", "--hmr", "--no-clear-screen"];

/** A failure this script explains in one line (no stack trace). */
export class BuildError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

/**
 * Returns the flags in `flags` that are forbidden in a release build, in order.
 * Catches `--allow-ffi=x`, `-A` and short clusters such as `-RA`.
 *
 * @example
 * ```ts
 * forbiddenFlags(["--allow-read", "--allow-ffi=./x.so"]); // ["--allow-ffi=./x.so"]
 * ```
 */
export function forbiddenFlags(flags: readonly string[]): string[] {
  return flags.filter((flag) => {
    const name = flag.split("=", 1)[0];
    if (FORBIDDEN_FLAGS.includes(name)) return true;
    // Short flags can be clustered (`-RWA`); a cluster holding A, I or P is refused too.
    return /^-[A-Za-z]+$/.test(name) && /[AIP]/.test(name.slice(1));
  });
}

/**
 * Turns the `deno run` flags of the `pyprime` task into `deno compile` flags: refuses a
 * forbidden grant and drops run-only flags.
 *
 * @throws {BuildError} when a flag from {@link FORBIDDEN_FLAGS} is present
 * @example
 * ```ts
 * compileFlags(["--no-prompt", "--allow-read"]); // ["--no-prompt", "--allow-read"]
 * ```
 */
export function compileFlags(runFlags: readonly string[]): string[] {
  const bad = forbiddenFlags(runFlags);
  if (bad.length > 0) {
    throw new BuildError(
      `refusing to build: the "pyprime" task in deno.json grants ${bad.join(", ")}; ` +
        "release binaries never get -A, --allow-all, --allow-ffi, --allow-import or -P",
    );
  }
  return runFlags.filter((flag) => !RUN_ONLY_FLAGS.includes(flag.split("=", 1)[0]));
}

/** What the command line asked for. */
export interface CompileRequest {
  /** Targets to build; empty means "the default" (all, or the host with `DENORT_BIN`). */
  targets: Target[];
  /** Validate only: type check and dry-run `deno compile`, fetch nothing. */
  check: boolean;
  /** Where binaries and SHA256SUMS go. */
  outDir: string;
  /** The program to compile; `main.ts` unless a test says otherwise. */
  entry: string;
  /** The deno.json whose `pyprime` task holds the permission flags. */
  config: string;
  /** Print usage and stop. */
  help: boolean;
}

/** The usage text. */
export const USAGE =
  `Usage: deno run -A scripts/compile.ts [--target T]... [--out-dir DIR] [--check]

Builds DIR/pyprime-<target> (default DIR: dist) and DIR/SHA256SUMS.
Targets: ${TARGETS.join(", ")} (default: all;
with DENORT_BIN set: the host target).

  --target T     build T (repeatable)
  --out-dir DIR  write the binaries and SHA256SUMS to DIR
  --entry FILE   compile FILE instead of main.ts (for tests)
  --permissions-from FILE
                 read the pyprime task from FILE instead of deno.json (for tests)
  --check        type check and validate the build configuration; fetch nothing
  -h, --help     show this help`;

function isTarget(value: string): value is Target {
  return (TARGETS as readonly string[]).includes(value);
}

/**
 * Parses the script's arguments.
 *
 * @throws {BuildError} on an unknown option or target
 * @example
 * ```ts
 * parseArgs(["--target", "aarch64-apple-darwin", "--check"]).targets; // ["aarch64-apple-darwin"]
 * ```
 */
export function parseArgs(args: readonly string[]): CompileRequest {
  const request: CompileRequest = {
    targets: [],
    check: false,
    outDir: join(ROOT, "dist"),
    entry: join(ROOT, "main.ts"),
    config: join(ROOT, "deno.json"),
    help: false,
  };
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].startsWith("--") && args[i].includes("=")
      ? [args[i].slice(0, args[i].indexOf("=")), args[i].slice(args[i].indexOf("=") + 1)]
      : [args[i], undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined || v === "") throw new BuildError(`${name} needs a value`);
      return v;
    };
    if (name === "--check") request.check = true;
    else if (name === "-h" || name === "--help") request.help = true;
    else if (name === "--out-dir") request.outDir = resolve(value());
    else if (name === "--entry") request.entry = resolve(value());
    else if (name === "--permissions-from") request.config = resolve(value());
    else if (name === "--target") {
      const target = value();
      if (!isTarget(target)) {
        throw new BuildError(
          `unknown target ${JSON.stringify(target)}; one of ${TARGETS.join(", ")}`,
        );
      }
      if (!request.targets.includes(target)) request.targets.push(target);
    } else throw new BuildError(`unknown option ${JSON.stringify(args[i])}; see --help`);
  }
  return request;
}

/** The target of the machine running this script, if pyprime ships one for it. */
export function hostTarget(): Target | undefined {
  return isTarget(Deno.build.target) ? Deno.build.target : undefined;
}

/**
 * Tells which target an executable was built for from its ELF or Mach-O header, or
 * `undefined` when the header is neither (or a fat Mach-O).
 *
 * @example
 * ```ts
 * binaryTarget(await Deno.readFile(Deno.execPath())); // e.g. "x86_64-unknown-linux-gnu"
 * ```
 */
export function binaryTarget(header: Uint8Array): Target | undefined {
  if (header.length < 20) return undefined;
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(0, false) === 0x7f454c46) {
    const littleEndian = header[5] === 1;
    const machine = view.getUint16(18, littleEndian);
    if (machine === 62) return "x86_64-unknown-linux-gnu";
    if (machine === 183) return "aarch64-unknown-linux-gnu";
    return undefined;
  }
  if (view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    if (cpu === 0x01000007) return "x86_64-apple-darwin";
    if (cpu === 0x0100000c) return "aarch64-apple-darwin";
  }
  return undefined;
}

/** Where `deno compile` gets the runtime for one target. */
export type DenortSource =
  | { kind: "bin"; path: string }
  | { kind: "cache"; path: string }
  | { kind: "download"; url: string };

/** Inputs of {@link locateDenort}. */
export interface LocateOptions {
  /** Value of `DENORT_BIN`, if set. */
  denortBin?: string;
  /** The `DENO_DIR` deno compile uses (see {@link denoDir}). */
  denoDir: string;
  /** The deno version whose runtime is needed; defaults to the running one. */
  version?: string;
}

/** The path `deno compile` caches `denort-<target>.zip` at for this deno version. */
export function cachedDenortPath(denoDirPath: string, target: Target, version = Deno.version.deno) {
  return join(denoDirPath, "dl", "release", `v${version}`, `denort-${target}.zip`);
}

/** The URL `deno compile` downloads `denort-<target>.zip` from. */
export function denortUrl(target: Target, version = Deno.version.deno): string {
  return `${DOWNLOAD_HOST}/release/v${version}/denort-${target}.zip`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Finds the runtime `deno compile` will use for `target`, in deno's own order: `DENORT_BIN`,
 * then the cached zip; otherwise it must be downloaded. Checks that `DENORT_BIN` exists and
 * was built for `target` (one runtime serves one target only).
 *
 * @throws {BuildError} when `DENORT_BIN` is missing or built for another target
 * @example
 * ```ts
 * await locateDenort("x86_64-unknown-linux-gnu", { denoDir: "/home/me/.cache/deno" });
 * // { kind: "download", url: "https://dl.deno.land/release/v2.9.6/denort-…zip" }
 * ```
 */
export async function locateDenort(target: Target, options: LocateOptions): Promise<DenortSource> {
  if (options.denortBin) {
    const path = resolve(options.denortBin);
    let header: Uint8Array;
    try {
      using file = await Deno.open(path);
      header = new Uint8Array(64);
      const n = await file.read(header);
      header = header.subarray(0, n ?? 0);
    } catch (error) {
      throw new BuildError(`cannot read DENORT_BIN ${path}: ${(error as Error).message}`);
    }
    const built = binaryTarget(header);
    if (built !== undefined && built !== target) {
      throw new BuildError(
        `DENORT_BIN ${path} is a runtime for ${built}, not ${target}; ` +
          `build one target per DENORT_BIN (--target ${built})`,
      );
    }
    return { kind: "bin", path };
  }
  const cached = cachedDenortPath(options.denoDir, target, options.version);
  if (await isFile(cached)) return { kind: "cache", path: cached };
  return { kind: "download", url: denortUrl(target, options.version) };
}

/** The one-line explanation for "no runtime here and none can be downloaded". */
export function noDenortMessage(target: Target, denoDirPath: string, cause: string): string {
  const dir = join(denoDirPath, "dl", "release", `v${Deno.version.deno}`);
  return `no denort runtime for ${target} here and none can be downloaded from ${DOWNLOAD_HOST} ` +
    `(${cause}); ` +
    `either build with network access, set DENORT_BIN=/path/to/denort (host target only), ` +
    `or put denort-${target}.zip into ${dir}/`;
}

/**
 * Checks that `url` answers, so an offline build fails before `deno compile` runs.
 * Returns `undefined` when reachable, else a short cause.
 */
export async function probeDownload(url: string, timeoutMs = PROBE_TIMEOUT_MS) {
  try {
    const response = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok ? undefined : `HTTP ${response.status} for ${url}`;
  } catch (error) {
    const e = error as Error;
    if (e.name === "TimeoutError") return `no answer within ${timeoutMs / 1000}s`;
    // Deno's "fetch failed" hides the reason in `cause`: "error sending request for url
    // (…): client error (Connect): dns error: …"; keep the part after the wrappers.
    const reason = e.cause instanceof Error ? e.cause.message : e.message;
    return firstLine(
      reason.replace(/^error sending request for url \([^)]*\): /, "")
        .replace(/^client error \(Connect\): /, ""),
    ) || e.name;
  }
}

// deno-lint-ignore no-control-regex -- ESC starts the colour codes deno prints
const ANSI = /\x1b\[[0-9;]*m/g;

function firstLine(text: string): string {
  return text.split("\n").find((line) => line.trim() !== "")?.trim() ?? "";
}

/** Strips colours and the Rust backtrace from deno's stderr. */
export function cleanDenoOutput(stderr: string): string {
  const text = stderr.replace(ANSI, "");
  const cut = text.search(/^Stack backtrace:/m);
  return (cut === -1 ? text : text.slice(0, cut)).trim();
}

/**
 * Recognises `deno compile` failing to download its runtime and returns the cause
 * (e.g. `dns error`, `Connection refused (os error 111)`), else `undefined`.
 *
 * @example
 * ```ts
 * downloadFailureCause("Caused by:\n    0: Setting up base binary.\n    1: error sending …");
 * ```
 */
export function downloadFailureCause(stderr: string): string | undefined {
  const text = cleanDenoOutput(stderr);
  if (!/Setting up base binary|dl\.deno\.land\/release\//.test(text)) return undefined;
  const causes = [...text.matchAll(/^\s*\d+: (.+)$/gm)].map((m) => m[1].trim());
  return causes.at(-1) ?? firstLine(text);
}

/** The `DENO_DIR` that `deno` uses under the current environment (from `deno info --json`). */
export async function denoDir(): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new BuildError(
      `deno info failed: ${firstLine(cleanDenoOutput(new TextDecoder().decode(stderr)))}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(stdout)).denoDir;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Writes `SHA256SUMS` in `outDir` listing the given targets' binaries, in the format
 * `sha256sum -c` and the installer read (`<hex>  pyprime-<target>`). Returns the text.
 */
export async function writeChecksums(outDir: string, targets: readonly Target[]): Promise<string> {
  const lines = [];
  for (const target of TARGETS.filter((t) => targets.includes(t))) {
    lines.push(`${await sha256File(join(outDir, `pyprime-${target}`))}  pyprime-${target}`);
  }
  const text = lines.join("\n") + "\n";
  const tmp = join(outDir, `.SHA256SUMS.${crypto.randomUUID()}`);
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, join(outDir, "SHA256SUMS"));
  return text;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function deno(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** Everything a check or a build needs, resolved once. */
interface Plan {
  flags: string[];
  targets: Target[];
  entry: string;
  outDir: string;
  denoDir: string;
  denortBin?: string;
}

function compileArgs(plan: Plan, target: Target, output: string, extra: string[] = []) {
  return [
    "compile",
    ...plan.flags,
    "--frozen-lockfile",
    ...extra,
    "--target",
    target,
    "--output",
    output,
    plan.entry,
  ];
}

async function describeRuntime(plan: Plan, target: Target): Promise<string> {
  try {
    const source = await locateDenort(target, plan);
    if (source.kind === "bin") return `DENORT_BIN ${source.path}`;
    if (source.kind === "cache") return `cached ${source.path}`;
    return `to download from ${source.url}`;
  } catch (error) {
    return (error as Error).message;
  }
}

async function check(plan: Plan) {
  const name = plan.entry.startsWith(ROOT) ? relative(ROOT, plan.entry) : plan.entry;
  const checked = await deno(["check", plan.entry]);
  if (checked.code !== 0) {
    console.error(cleanDenoOutput(checked.stderr));
    throw new BuildError(`type check of ${name} failed`);
  }
  console.error(`ok: deno check ${name}`);
  // A DENORT_BIN that does not exist makes deno compile stop right before it needs the
  // runtime, after it has parsed the permission flags and resolved the module graph.
  const scratch = await Deno.makeTempDir({ prefix: "pyprime-compile-check-" });
  try {
    const sentinel = join(scratch, "no-denort-on-purpose");
    for (const target of plan.targets) {
      const output = join(scratch, `pyprime-${target}`);
      const ran = await deno(compileArgs(plan, target, output, ["--no-check"]), {
        DENORT_BIN: sentinel,
      });
      if (!ran.stderr.includes(`Could not find denort at '${sentinel}'`)) {
        console.error(cleanDenoOutput(ran.stderr));
        throw new BuildError(`deno compile rejects the build configuration for ${target}`);
      }
      const runtime = await describeRuntime(plan, target);
      console.error(`ok: deno compile accepts the build for ${target} (runtime: ${runtime})`);
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  console.error(`ok: permission flags ${plan.flags.join(" ")}`);
}

async function build(plan: Plan) {
  const sources = new Map<Target, DenortSource>();
  for (const target of plan.targets) sources.set(target, await locateDenort(target, plan));
  const missing = plan.targets.find((t) => sources.get(t)!.kind === "download");
  if (missing) {
    const cause = await probeDownload(denortUrl(missing));
    if (cause) throw new BuildError(noDenortMessage(missing, plan.denoDir, cause));
  }
  await Deno.mkdir(plan.outDir, { recursive: true });
  for (const target of plan.targets) {
    const output = join(plan.outDir, `pyprime-${target}`);
    const ran = await deno(compileArgs(plan, target, output));
    if (ran.code !== 0) {
      const cause = downloadFailureCause(ran.stderr);
      if (cause) throw new BuildError(noDenortMessage(target, plan.denoDir, cause));
      console.error(cleanDenoOutput(ran.stderr));
      throw new BuildError(`deno compile failed for ${target}`);
    }
    const size = (await Deno.stat(output)).size;
    console.error(`built ${output} (${(size / 2 ** 20).toFixed(1)} MiB)`);
  }
  await writeChecksums(plan.outDir, plan.targets);
  console.error(`wrote ${join(plan.outDir, "SHA256SUMS")}`);
}

function resolveTargets(requested: Target[], denortBin?: string): Target[] {
  if (requested.length > 0) {
    if (denortBin && requested.length > 1) {
      throw new BuildError(
        "DENORT_BIN is one runtime for one target; pass a single --target with it",
      );
    }
    return requested;
  }
  if (!denortBin) return [...TARGETS];
  const host = hostTarget();
  if (!host) {
    throw new BuildError(
      `DENORT_BIN is set but ${Deno.build.target} is no pyprime target; pass --target`,
    );
  }
  return [host];
}

/**
 * Runs the script; returns the exit code. Errors it expects are printed as one
 * `error: …` line.
 */
export async function main(args: readonly string[]): Promise<number> {
  try {
    const request = parseArgs(args);
    if (request.help) {
      console.log(USAGE);
      return 0;
    }
    const flags = compileFlags(await permissionFlags(request.config));
    const denortBin = Deno.env.get("DENORT_BIN") || undefined;
    const plan: Plan = {
      flags,
      targets: resolveTargets(request.targets, denortBin),
      entry: request.entry,
      outDir: request.outDir,
      denoDir: await denoDir(),
      denortBin,
    };
    await (request.check ? check(plan) : build(plan));
    return 0;
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    console.error(`error: ${error.message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
