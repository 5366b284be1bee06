/**
 * Installation of one archive: lock, staging, one streaming pass (sha256 →
 * decompression → extraction), interpreter probe, sysconfig rewrite, bytecode, and
 * the atomic promotion that makes it visible only when complete.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { type ArchiveFormat, decompress } from "../unpack/decompress.ts";
import { sha256Tap, verifySha256 } from "../fetch/digest.ts";
import {
  ArchiveError,
  ChecksumMismatchError,
  PyprimeError,
  refusedPath,
  UnsafeEntryError,
} from "../errors.ts";
import { type ExtractResult, extractTar, type WrittenPath } from "../unpack/extract.ts";
import type { ExtractLimits } from "../unpack/limits.ts";
import { confineProbe, type InterpreterInfo, keyOf, probeInterpreter } from "./interpreter.ts";
import type { Download } from "../resolve/catalog.ts";
import { formatVersion } from "../resolve/version.ts";
import type { ArchiveSource } from "../fetch/source.ts";
import { exists } from "../fs.ts";
import { pbsEntryPath, STAGING_DIR } from "./layout.ts";
import { checkConfigSizes, rewriteSysconfig } from "./sysconfig.ts";

/** Options of {@link stageArchive}. */
export interface StageOptions {
  /** The install dir, absolute and real (see {@link prepareInstallDir}). */
  installDir: string;
  /** Expected sha256 (lowercase hex); a mismatch fails the install. */
  sha256?: string;
  /** Replace an existing installation of the same key. */
  reinstall?: boolean;
  /** Extraction limits. */
  limits?: Partial<ExtractLimits>;
  /** Stops the install; the staging folder is removed. */
  signal?: AbortSignal;
  /** Progress of bytes read from the source. */
  onBytes?: (bytes: number) => void;
  /**
   * For an archive of another platform: what the catalog says it is. Its interpreter
   * cannot run here, so it is not probed and the installation is named from this.
   */
  foreign?: Download;
  /**
   * The key the archive's name promised (a pack a mirror's SHA256SUMS listed): the
   * interpreter must say the same, or the install fails.
   */
  expectKey?: string;
}

/** An archive extracted and checked in a staging folder; its interpreter not run yet. */
export interface Extracted {
  /** The staging folder (the future installation root). */
  staging: string;
  /** sha256 of the archive bytes. */
  sha256: string;
  /** Compressed size read. */
  archiveBytes: number;
  /** Container format found by magic bytes. */
  format: ArchiveFormat;
  /** Extraction counts. */
  extract: ExtractResult;
  /** Seconds spent streaming and extracting. */
  extractSeconds: number;
  /** The archive's source, for commit/discard. */
  source: ArchiveSource;
  /** Set for an archive of another platform: the catalog entry it was named from. */
  foreign?: Download;
  /**
   * What was written at each `.py` and `.pyc` path (the last entry of a path wins):
   * any `.pyc` makes it an archive that ships bytecode (a `pyprime pack`), and with the
   * interpreter's magic number it tells which shipped `.pyc` are current.
   */
  shipped: Map<string, WrittenPath>;
}

/** An extracted archive whose interpreter has described itself, not yet visible. */
export interface Staged extends Extracted {
  /** Files the build-prefix rewrite changed (relative); their shipped `.pyc` are stale. */
  rewritten: string[];
  /** Where it will live: `<install-dir>/<key>`. */
  target: string;
  /** The interpreter's own description (its folders checked to lie in the staging folder). */
  info: InterpreterInfo;
  /** The key is installed already and `reinstall` was not asked. */
  alreadyInstalled: boolean;
}

/** Creates the install dir and returns its real path (so staging paths and final paths agree). */
export async function prepareInstallDir(dir: string): Promise<string> {
  try {
    await Deno.mkdir(join(dir, STAGING_DIR), { recursive: true });
    return await Deno.realPath(dir);
  } catch (err) {
    throw dirError(dir, err);
  }
}

/**
 * The error for an install dir pyprime cannot change (read-only file system, no
 * permission, not a folder): one line naming the dir and the cause.
 */
export function dirError(dir: string, err: unknown): PyprimeError {
  if (err instanceof PyprimeError) return err;
  const refused = refusedPath(err);
  if (refused) return new PyprimeError(refused.message, { cause: err, hint: refused.hint });
  const message = (err as Error).message ?? String(err);
  return new PyprimeError(`Cannot use ${dir} as the install dir: ${message}`, {
    cause: err,
    hint: "pass --install-dir DIR (or PYPRIME_PYTHON_INSTALL_DIR) naming a folder you can write",
  });
}

/** True when a reinstall was killed between its renames in `dir` (see {@link recoverPrevious}). */
export async function needsRecovery(dir: string): Promise<boolean> {
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = /^\.(.+)\.previous$/.exec(entry.name);
      if (m && entry.isDirectory && !(await exists(join(dir, m[1])))) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/**
 * Holds the install dir's lock while `fn` runs. A second process waits here, and
 * once it has the lock no other pyprime is using the staging folder, so leftovers of
 * a killed run are removed.
 *
 * @example
 * ```ts
 * await withInstallLock(dir, async () => {/* stage and promote *\/});
 * ```
 */
export async function withInstallLock<T>(
  dir: string,
  fn: () => Promise<T>,
  onWait?: () => void,
): Promise<T> {
  const file = await Deno.open(join(dir, ".lock"), { create: true, write: true }).catch((err) => {
    throw dirError(dir, err);
  });
  try {
    const timer = onWait ? setTimeout(onWait, 500) : undefined;
    try {
      await file.lock(true);
    } finally {
      clearTimeout(timer);
    }
    await removeStaleStaging(dir).catch((err) => {
      throw dirError(dir, err);
    });
    return await fn();
  } finally {
    file.close(); // closing releases the lock
  }
}

async function removeStaleStaging(dir: string): Promise<void> {
  const staging = join(dir, STAGING_DIR);
  for await (const entry of Deno.readDir(staging)) {
    await Deno.remove(join(staging, entry.name), { recursive: true }).catch(() => {});
  }
  await recoverPrevious(dir);
}

/** Where a reinstall keeps the old installation while the new one is renamed in. */
function previousPath(target: string): string {
  return join(dirname(target), `.${basename(target)}.previous`);
}

/**
 * Finishes a reinstall that was killed between its two renames: the old installation
 * goes back into place when its key is missing, and is deleted when the new one made it.
 */
async function recoverPrevious(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const m = /^\.(.+)\.previous$/.exec(entry.name);
    if (!m || !entry.isDirectory) continue;
    const target = join(dir, m[1]);
    if (await exists(target)) await removeTree(join(dir, entry.name));
    else await Deno.rename(join(dir, entry.name), target);
  }
}

function randomName(): string {
  return crypto.randomUUID().slice(0, 13);
}

/** Removes a folder, ignoring one that is already gone. */
export async function removeTree(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

/**
 * Streams `source` once through sha256, decompression and the extraction policy
 * into a fresh staging folder and verifies the digest. Nothing from the archive runs
 * yet (see {@link inspectStaged}). Must run inside {@link withInstallLock}. On any
 * failure the staging folder is removed before the error propagates.
 */
export async function stageArchive(
  source: ArchiveSource,
  options: StageOptions,
): Promise<Extracted> {
  const staging = join(options.installDir, STAGING_DIR, randomName());
  await Deno.mkdir(staging).catch((err) => {
    throw dirError(options.installDir, err);
  });
  return await cleanupOnFailure(staging, source, () => extractInto(staging, source, options));
}

/**
 * Runs the staged interpreter to learn its key (or names a foreign one from the
 * catalog), checks that the folders it names lie inside the staging folder, and
 * rewrites build prefixes. Call it only once the network permission is dropped.
 */
export async function inspectStaged(extracted: Extracted, options: StageOptions): Promise<Staged> {
  const { staging, source } = extracted;
  return await cleanupOnFailure(staging, source, async () => {
    const python = await findInterpreter(staging, source.label);
    await checkConfigSizes(staging);
    const info = options.foreign ? describeDownload(options.foreign, staging) : await confineProbe(
      await probeInterpreter(python, source.label, options.signal),
      staging,
      source.label,
    );
    if (options.expectKey !== undefined && info.key !== options.expectKey) {
      throw new ArchiveError(
        `Cannot install ${source.label}: its interpreter is ${info.key}, not the ${options.expectKey} its name says`,
        { hint: "the folder's SHA256SUMS lists it under another name; pack it again" },
      );
    }
    const target = join(options.installDir, info.key);
    const alreadyInstalled = !options.reinstall && await exists(target);
    const rewritten = alreadyInstalled ? [] : await rewriteSysconfig(staging, target);
    return { ...extracted, target, info, alreadyInstalled, rewritten };
  });
}

async function cleanupOnFailure<T>(
  staging: string,
  source: ArchiveSource,
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (err) {
    await removeTree(staging);
    // A partial download is always dropped; a cached archive is evicted only when its
    // bytes were bad, never on a signal or a failure of ours: with --offline it may be
    // the only copy.
    const bad = err instanceof ChecksumMismatchError || err instanceof ArchiveError ||
      err instanceof UnsafeEntryError;
    if (bad || !source.fromCache) await source.discard?.();
    throw err;
  }
}

async function extractInto(
  staging: string,
  source: ArchiveSource,
  options: StageOptions,
): Promise<Extracted> {
  const started = performance.now();
  const tap = sha256Tap();
  const counted = options.onBytes ? countBytes(options.onBytes) : undefined;
  let raw = source.stream.pipeThrough(tap.stream, { signal: options.signal });
  if (counted) raw = raw.pipeThrough(counted);
  const { format, stream } = await decompress(raw, source.label);
  const shipped = new Map<string, WrittenPath>();
  const extract = await extractTar(stream, {
    dest: staging,
    label: source.label,
    mapName: (name) => pbsEntryPath(name, source.label),
    limits: options.limits,
    signal: options.signal,
    onPath: (rel, written) => {
      if (rel.endsWith(".py") || rel.endsWith(".pyc")) shipped.set(rel, written);
    },
  });
  const sha256 = await tap.digest;
  verifySha256(source.label, options.sha256, sha256);
  return {
    staging,
    sha256,
    archiveBytes: tap.bytes(),
    format,
    extract,
    extractSeconds: (performance.now() - started) / 1000,
    source,
    foreign: options.foreign,
    shipped,
  };
}

/** What a catalog download says about its interpreter, for one that cannot run here. */
function describeDownload(download: Download, staging: string): InterpreterInfo {
  const { major, minor } = download.version;
  const t = download.variant?.includes("freethreaded") ? "t" : "";
  const info = {
    implementation: "cpython",
    version: formatVersion(download.version),
    minor: `${major}.${minor}`,
    variant: download.variant ?? "",
    os: download.os,
    arch: download.arch,
    libc: download.libc,
    stdlib: join(staging, "lib", `python${major}.${minor}${t}`),
    prefix: staging,
    exec_prefix: staging,
    platstdlib: join(staging, "lib", `python${major}.${minor}${t}`),
    purelib: join(staging, "lib", `python${major}.${minor}${t}`, "site-packages"),
  };
  return { ...info, key: keyOf(info) };
}

function countBytes(onBytes: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.length;
      onBytes(total);
      controller.enqueue(chunk);
    },
  });
}

/** Finds `bin/python3` (or `bin/python3.X`) in an extracted tree. */
async function findInterpreter(root: string, label: string): Promise<string> {
  const bin = join(root, "bin");
  if (await exists(join(bin, "python3"))) return join(bin, "python3");
  try {
    for await (const entry of Deno.readDir(bin)) {
      if (/^python3\.\d+t?$/.test(entry.name)) return join(bin, entry.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  throw new ArchiveError(`Cannot install ${label}: no python/bin/python3 in the archive`, {
    hint: "pass a python-build-standalone install_only or full archive",
  });
}

/**
 * Makes a staged installation visible by renaming it into place. With an existing
 * installation (a reinstall), the old one is moved aside first and restored if the
 * rename fails, so a failed reinstall leaves the previous installation working.
 */
export async function promote(staged: Staged): Promise<void> {
  const { staging, target } = staged;
  if (!(await exists(target))) {
    await Deno.rename(staging, target).catch((err) => {
      throw dirError(dirname(target), err);
    });
    return;
  }
  // Not inside .staging: a run killed between the two renames must not lose the old
  // installation; the next locked run puts it back (see recoverPrevious).
  const aside = previousPath(target);
  try {
    await removeTree(aside);
    await Deno.rename(target, aside);
  } catch (err) {
    throw new PyprimeError(`Cannot replace ${target}: ${(err as Error).message}`, {
      cause: err,
      hint: "check that the install dir is writable; the previous installation is unchanged",
    });
  }
  try {
    await Deno.rename(staging, target);
  } catch (err) {
    await Deno.rename(aside, target).catch(() => {});
    throw new PyprimeError(`Cannot replace ${target}: ${(err as Error).message}`, { cause: err });
  }
  await removeTree(aside);
}
