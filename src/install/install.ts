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
import { ArchiveError, ChecksumMismatchError, PyprimeError, UnsafeEntryError } from "../errors.ts";
import { type ExtractResult, extractTar } from "../unpack/extract.ts";
import type { ExtractLimits } from "../unpack/limits.ts";
import { type InterpreterInfo, keyOf, probeInterpreter } from "./interpreter.ts";
import type { Download } from "../resolve/catalog.ts";
import { formatVersion } from "../resolve/version.ts";
import type { ArchiveSource } from "../fetch/source.ts";
import { exists } from "../fs.ts";
import { pbsEntryPath, STAGING_DIR } from "./layout.ts";
import { rewriteSysconfig } from "./sysconfig.ts";

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
}

/** An archive extracted and checked in a staging folder, not yet visible. */
export interface Staged {
  /** The staging folder (the future installation root). */
  staging: string;
  /** Where it will live: `<install-dir>/<key>`. */
  target: string;
  /** The interpreter's own description. */
  info: InterpreterInfo;
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
  /** The key is installed already and `reinstall` was not asked. */
  alreadyInstalled: boolean;
  /** The archive's source, for commit/discard. */
  source: ArchiveSource;
  /** Set for an archive of another platform: the catalog entry it was named from. */
  foreign?: Download;
  /** `.pyc` entries the archive had (a `pyprime pack`): they are checked, not recompiled. */
  pycEntries: number;
  /** Files the build-prefix rewrite changed (relative); their shipped `.pyc` are stale. */
  rewritten: string[];
}

/** Creates the install dir and returns its real path (so staging paths and final paths agree). */
export async function prepareInstallDir(dir: string): Promise<string> {
  try {
    await Deno.mkdir(join(dir, STAGING_DIR), { recursive: true });
    return await Deno.realPath(dir);
  } catch (err) {
    throw new PyprimeError(`Cannot use ${dir} as the install dir: ${(err as Error).message}`, {
      cause: err,
      hint: "pass --install-dir DIR (or PYPRIME_PYTHON_INSTALL_DIR) naming a folder you can write",
    });
  }
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
  const file = await Deno.open(join(dir, ".lock"), { create: true, write: true });
  try {
    const timer = onWait ? setTimeout(onWait, 500) : undefined;
    try {
      await file.lock(true);
    } finally {
      clearTimeout(timer);
    }
    await removeStaleStaging(dir);
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
 * into a fresh staging folder, verifies the digest, probes the interpreter for its
 * key and rewrites build prefixes. Must run inside {@link withInstallLock}. On any
 * failure the staging folder is removed before the error propagates.
 */
export async function stageArchive(source: ArchiveSource, options: StageOptions): Promise<Staged> {
  const staging = join(options.installDir, STAGING_DIR, randomName());
  await Deno.mkdir(staging);
  try {
    return await stageInto(staging, source, options);
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

async function stageInto(
  staging: string,
  source: ArchiveSource,
  options: StageOptions,
): Promise<Staged> {
  const started = performance.now();
  const tap = sha256Tap();
  const counted = options.onBytes ? countBytes(options.onBytes) : undefined;
  let raw = source.stream.pipeThrough(tap.stream, { signal: options.signal });
  if (counted) raw = raw.pipeThrough(counted);
  const { format, stream } = await decompress(raw, source.label);
  let pycEntries = 0;
  const extract = await extractTar(stream, {
    dest: staging,
    label: source.label,
    mapName: (name) => {
      if (name.endsWith(".pyc")) pycEntries++;
      return pbsEntryPath(name, source.label);
    },
    limits: options.limits,
    signal: options.signal,
  });
  const sha256 = await tap.digest;
  verifySha256(source.label, options.sha256, sha256);
  const extractSeconds = (performance.now() - started) / 1000;

  const python = await findInterpreter(staging, source.label);
  const info = options.foreign
    ? describeDownload(options.foreign, staging)
    : await probeInterpreter(python, source.label, options.signal);
  const target = join(options.installDir, info.key);
  const alreadyInstalled = !options.reinstall && await exists(target);
  const rewritten = alreadyInstalled ? [] : await rewriteSysconfig(staging, target);
  return {
    staging,
    target,
    info,
    sha256,
    archiveBytes: tap.bytes(),
    format,
    extract,
    extractSeconds,
    alreadyInstalled,
    source,
    foreign: options.foreign,
    pycEntries,
    rewritten,
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
    await Deno.rename(staging, target);
    return;
  }
  // Not inside .staging: a run killed between the two renames must not lose the old
  // installation; the next locked run puts it back (see recoverPrevious).
  const aside = previousPath(target);
  await removeTree(aside);
  await Deno.rename(target, aside);
  try {
    await Deno.rename(staging, target);
  } catch (err) {
    await Deno.rename(aside, target).catch(() => {});
    throw new PyprimeError(`Cannot replace ${target}: ${(err as Error).message}`, { cause: err });
  }
  await removeTree(aside);
}
