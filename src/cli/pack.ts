/**
 * `pyprime pack KEY|REQUEST|PATH`: write a compiled installation as a relocatable,
 * byte-reproducible python-build-standalone-shaped archive that installs with no compile
 * step, print its sha256 and record it in the `SHA256SUMS` beside it.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { BYTECODE_RECORD } from "../bytecode/record.ts";
import { ORIGIN_FILE } from "../install/origin.ts";
import { PyprimeError } from "../errors.ts";
import { isDir } from "../fs.ts";
import { probeInterpreter } from "../install/interpreter.ts";
import { installDir, interpreterPath } from "../install/layout.ts";
import {
  DEFAULT_LEVEL,
  MAX_LEVEL,
  type PackFormat,
  updateSums,
  writePack,
} from "../pack/archive.ts";
import { verifyCompiled } from "../pack/verify.ts";
import { abortOnSignals } from "../signals.ts";
import { findInstallations } from "./manage.ts";
import type { Output } from "./output.ts";

/** Options of {@link runPack}, as parsed from the command line. */
export interface PackCommandOptions {
  /** `-o FILE` or `-o -`; default: the pack's name in the working directory. */
  output?: string;
  /** `--format`. */
  format?: string;
  /** `--level`. */
  level?: string;
  /** `--install-dir`. */
  installDir?: string;
  /** `--jobs` for the bytecode check. */
  jobs?: number;
}

/** What `pack --json` prints. */
export interface PackOutcome {
  /** The installation packed. */
  installation: string;
  /** Its key. */
  key: string;
  /** The archive, or `-`. */
  output: string;
  /** sha256 of the archive. */
  sha256: string;
  /** Archive size in bytes. */
  bytes: number;
  /** Tar entries. */
  entries: number;
  /** The `SHA256SUMS` updated (absent for standard output). */
  sums?: string;
  /** Seconds checking the bytecode and writing. */
  seconds: number;
}

function usage(message: string, hint?: string): PyprimeError {
  return new PyprimeError(message, { exitCode: 2, hint });
}

/** PBS's target triple of an installation key's platform part. */
export function tripleOf(os: string, arch: string, libc: string): string {
  const cpu = arch === "x86" ? "i686" : arch;
  if (os === "macos") return `${cpu}-apple-darwin`;
  if (os === "windows") return `${cpu}-pc-windows-msvc`;
  return `${cpu}-unknown-${os}-${libc}`;
}

/**
 * The default file name: PBS's `install_only` shape with `pyprime` as the release,
 * e.g. `cpython-3.12.1+pyprime-x86_64-unknown-linux-gnu-install_only.tar.zst`.
 */
export function packName(
  info: { version: string; variant: string; os: string; arch: string; libc: string },
  format: PackFormat,
): string {
  const variant = info.variant ? `-${info.variant}` : "";
  const triple = tripleOf(info.os, info.arch, info.libc);
  return `cpython-${info.version}+pyprime-${triple}${variant}-install_only.${format}`;
}

/** The installation a KEY, REQUEST or PATH names. */
async function locate(target: string, options: PackCommandOptions): Promise<string> {
  if (target.includes("/") || target === "." || target === "..") {
    const root = resolve(target);
    if (await isDir(root)) return root;
    throw usage(
      `Cannot pack ${target}: not a folder`,
      "pass an installation folder, a key or a version",
    );
  }
  const dir = installDir(options.installDir);
  const found = await findInstallations(dir, target);
  if (found.length === 0) {
    throw new PyprimeError(`No installed Python matches ${target} in ${dir}`, {
      hint: `install it first: pyprime install ${target}`,
    });
  }
  return found.at(-1)!.path;
}

function parseFormat(options: PackCommandOptions): PackFormat {
  const fromName = options.output?.endsWith(".tar.gz") || options.output?.endsWith(".tgz")
    ? "tar.gz"
    : undefined;
  const format = options.format ?? fromName ?? "tar.zst";
  if (format !== "tar.zst" && format !== "tar.gz") {
    throw usage(`--format takes tar.zst or tar.gz, not ${format}`);
  }
  return format;
}

function parseLevel(options: PackCommandOptions, format: PackFormat): number {
  if (options.level === undefined) return DEFAULT_LEVEL[format];
  const n = Number(options.level);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LEVEL[format]) {
    throw usage(`--level for ${format} takes 1 to ${MAX_LEVEL[format]}, not ${options.level}`);
  }
  return n;
}

/**
 * Runs `pyprime pack`; returns the exit code.
 *
 * @example
 * ```ts
 * await runPack("3.12", {}, new Output());
 * ```
 */
export async function runPack(
  target: string,
  options: PackCommandOptions,
  out: Output,
): Promise<number> {
  await out.ready();
  const format = parseFormat(options);
  const level = parseLevel(options, format);
  const started = performance.now();
  const root = await locate(target, options);
  const python = interpreterPath(root);
  const controller = new AbortController();
  const stopListening = abortOnSignals(controller);
  const signal = controller.signal;
  try {
    const info = await probeInterpreter(python, root, signal);
    // `-o DIR` (an existing folder, say a mirror of packs) gets the default name in it;
    // so does `-o DIR/`, made first when it does not exist yet.
    if (options.output?.endsWith("/") && !(await isDir(options.output))) {
      await Deno.mkdir(options.output, { recursive: true }).catch((err) => {
        throw usage(`Cannot make the folder ${options.output}: ${(err as Error).message}`);
      });
    }
    const output = options.output === undefined
      ? join(Deno.cwd(), packName(info, format))
      : options.output === "-"
      ? "-"
      : await isDir(options.output)
      ? join(resolve(options.output), packName(info, format))
      : resolve(options.output);
    if (output !== "-" && !(await isDir(dirname(output)))) {
      throw usage(`Cannot write ${output}: ${dirname(output)} is not a folder`);
    }
    const checked = await verifyCompiled({
      root,
      python,
      stdlib: info.stdlib,
      jobs: options.jobs,
      signal,
    });
    out.debug(`Bytecode of ${checked.files} sources is current (${checked.seconds.toFixed(2)}s)`);
    const bar = out.bar(`Packing ${info.key}`, 0, "files");
    let result;
    try {
      result = await writePack({
        root,
        output,
        format,
        level,
        // pyprime's own records of this installation: the install of the pack writes its own
        // (and BUILD's mtime, the install time, would make two packs differ).
        skipAtRoot: new Set([BYTECODE_RECORD, ORIGIN_FILE]),
        signal,
        onEntry: (n) => bar.update(n),
      });
    } finally {
      bar.stop();
    }
    for (const rel of result.unpatched) out.debug(`Put /install back in ${rel}`);
    const sums = output === "-" ? undefined : await updateSums(
      dirname(output),
      basename(output),
      result.sha256,
    );
    const seconds = (performance.now() - started) / 1000;
    out.info(
      `Packed ${info.key} into ${output === "-" ? "standard output" : output} (${
        (result.bytes / 1048576).toFixed(1)
      } MiB, ${result.entries} entries) in ${seconds.toFixed(2)}s`,
    );
    // The sha256 is the data; with the archive on stdout it goes to stderr.
    if (output === "-") out.info(`sha256 ${result.sha256}`);
    else out.data(`${result.sha256}  ${basename(output)}`);
    const outcome: PackOutcome = {
      installation: root,
      key: info.key,
      output,
      sha256: result.sha256,
      bytes: result.bytes,
      entries: result.entries,
      ...(sums ? { sums } : {}),
      seconds: Math.round(seconds * 1000) / 1000,
    };
    if (output !== "-") out.jsonData(outcome);
    return 0;
  } catch (err) {
    throw signal.aborted ? signal.reason : err;
  } finally {
    stopListening();
  }
}
