/**
 * Writes an installation as a python-build-standalone `install_only`-shaped archive
 * (every entry under `python/`), in one stream: tree walk → modern-tar's encoder →
 * zstd or gzip → sha256 → a temporary file in the output's folder, renamed into place
 * only when complete. Memory holds one directory listing per level of the walk, one
 * read buffer and one compressor buffer (see {@link READ_SIZE}), whatever the tree's size.
 *
 * Reproducible: entries depth first in byte order with each folder before its contents,
 * ustar headers with uid/gid 0 and empty owner names, the installed permission bits,
 * whole-second mtimes (clamped, see `tree.ts`), no PAX times; fixed compressor settings
 * (zstd: the level, a checksum, one thread; gzip: the level, no name, mtime 0).
 *
 * @module
 */
import { createTarPacker, type TarHeader } from "modern-tar";
import zlib from "node:zlib";
import { basename, dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { PyprimeError } from "../errors.ts";
import { isRewritten, unpatch } from "./prefix.ts";
import { newestSource, type TreeEntry, walkTree } from "./tree.ts";

/** Compression of a pack. */
export type PackFormat = "tar.zst" | "tar.gz";

/** Default levels: zstd 3 (zstd's own default) packs the 3.11 fixture in 2.4 s, level 10 in 9.6 s for 9 % less. */
export const DEFAULT_LEVEL: Record<PackFormat, number> = { "tar.zst": 3, "tar.gz": 6 };

/** The highest level of each format (zstd above 19 needs far more memory). */
export const MAX_LEVEL: Record<PackFormat, number> = { "tar.zst": 19, "tar.gz": 9 };

/** Options of {@link writePack}. */
export interface PackOptions {
  /** The installation root. */
  root: string;
  /** Output file, or `"-"` for standard output. */
  output: string;
  /** Compression. */
  format: PackFormat;
  /** Compression level; {@link DEFAULT_LEVEL} when absent. */
  level?: number;
  /** Root entries left out (the bytecode record). */
  skipAtRoot?: ReadonlySet<string>;
  /** Stops the pack; the temporary file is removed. */
  signal?: AbortSignal;
  /** Called after each entry with the entries written so far. */
  onEntry?: (entries: number) => void;
}

/** What {@link writePack} wrote. */
export interface PackResult {
  /** Lowercase hex sha256 of the archive. */
  sha256: string;
  /** Archive size. */
  bytes: number;
  /** Tar entries (folders, files, symlinks). */
  entries: number;
  /** Files whose build prefix was put back (relative to the root). */
  unpatched: string[];
}

function compressor(format: PackFormat, level: number) {
  if (format === "tar.gz") return zlib.createGzip({ level, memLevel: 8, windowBits: 15 });
  return zlib.createZstdCompress({
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
      [zlib.constants.ZSTD_c_nbWorkers]: 0,
    },
  });
}

/**
 * Memory: every byte of the tree passes through a fixed set of buffers. V8 frees an
 * ArrayBuffer only when a collection finds it dead, and external bytes trigger one only
 * after ~64 MB of growth, so a fresh buffer per read (and per compressor call) held
 * the peak RSS at 120–220 MB and rising with the largest file. Here one read buffer is
 * refilled once the tar stream's consumer has copied it out, and one staging buffer is
 * refilled once the compressor has taken it in (the write callback).
 */
const READ_SIZE = 64 * 1024;

/** Bytes given to the compressor per call. */
const STAGE_SIZE = 256 * 1024;

/** Hands a reused buffer to the tar encoder and waits until its reader has copied it. */
class Handoff {
  readonly buffer = new Uint8Array(READ_SIZE);
  #wake: (() => void) | undefined;
  #failed: unknown;

  /** Writes `buffer[0, n)` as the entry's next chunk; resolves once it was copied. */
  async pass(body: WritableStreamDefaultWriter<Uint8Array>, n: number): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    const copied = new Promise<void>((resolve) => this.#wake = resolve);
    await body.write(this.buffer.subarray(0, n));
    await copied;
    if (this.#failed !== undefined) throw this.#failed;
  }

  /** Called by the reader for each chunk it copied. */
  copied(chunk: Uint8Array): void {
    if (chunk.buffer !== this.buffer.buffer) return;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The reader stopped: release the writer for good. */
  fail(reason: unknown): void {
    this.#failed = reason ?? new Error("pack stream closed");
    this.#wake?.();
  }
}

/** Where the compressed bytes go, written synchronously as zlib emits them. */
type Sink = (chunk: Uint8Array) => void;

function writeAllSync(write: (p: Uint8Array) => number, chunk: Uint8Array): void {
  for (let at = 0; at < chunk.length;) at += write(chunk.subarray(at));
}

function header(entry: TreeEntry, size: number): TarHeader {
  const name = entry.rel === "" ? "python" : `python/${entry.rel}`;
  const base = { mode: entry.mode, mtime: new Date(entry.mtime * 1000), uid: 0, gid: 0 };
  if (entry.kind === "dir") return { ...base, name: `${name}/`, type: "directory", size: 0 };
  if (entry.kind === "symlink") {
    return { ...base, name, type: "symlink", size: 0, linkname: entry.linkname };
  }
  return { ...base, name, type: "file", size };
}

type Controller = ReturnType<typeof createTarPacker>["controller"];

async function addEntry(
  controller: Controller,
  root: string,
  entry: TreeEntry,
  unpatched: string[],
  handoff: Handoff,
): Promise<void> {
  const path = join(root, entry.rel);
  if (entry.kind === "file" && isRewritten(entry.rel)) {
    const original = await Deno.readFile(path);
    const bytes = unpatch(entry.rel, original) ?? original;
    if (bytes !== original) unpatched.push(entry.rel);
    const body = controller.add(header(entry, bytes.length)).getWriter();
    if (bytes.length) await body.write(bytes);
    return await body.close();
  }
  const body = controller.add(header(entry, entry.size)).getWriter();
  if (entry.kind !== "file" || entry.size === 0) return await body.close();
  const file = await Deno.open(path, { read: true });
  try {
    let seen = 0;
    for (;;) {
      const n = await file.read(handoff.buffer);
      if (n === null) break;
      seen += n;
      if (seen > entry.size) {
        throw new PyprimeError(`Cannot pack ${path}: it grew while being read`);
      }
      await handoff.pass(body, n);
    }
    if (seen !== entry.size) {
      throw new PyprimeError(`Cannot pack ${path}: it shrank while being read`);
    }
  } finally {
    file.close();
  }
  await body.close();
}

/**
 * Packs the installation at `options.root` into `options.output`.
 *
 * @example
 * ```ts
 * const r = await writePack({ root: "/opt/py", output: "py.tar.zst", format: "tar.zst" });
 * console.log(r.sha256);
 * ```
 */
export async function writePack(options: PackOptions): Promise<PackResult> {
  const level = options.level ?? DEFAULT_LEVEL[options.format];
  const toStdout = options.output === "-";
  const tmp = toStdout
    ? undefined
    : join(dirname(options.output), `.${basename(options.output)}.tmp-${crypto.randomUUID()}`);
  let file: Deno.FsFile | undefined;
  if (tmp !== undefined) {
    try {
      file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    } catch (err) {
      throw new PyprimeError(`Cannot write ${options.output}: ${(err as Error).message}`, {
        cause: err,
        hint: "pass -o FILE in a folder you can write, or -o - for standard output",
      });
    }
  }
  const out = file ?? Deno.stdout;
  const sink: Sink = (chunk) => writeAllSync((p) => out.writeSync(p), chunk);
  try {
    const result = await encode(options, level, sink);
    if (file) {
      file.close();
      file = undefined;
      await Deno.rename(tmp!, options.output);
    }
    return result;
  } catch (err) {
    file?.close();
    if (tmp !== undefined) await Deno.remove(tmp).catch(() => {});
    throw options.signal?.aborted ? options.signal.reason : err;
  }
}

/** Feeds the tar stream to the compressor through one reused staging buffer. */
async function compress(
  readable: ReadableStream<Uint8Array>,
  z: ReturnType<typeof compressor>,
  handoff: Handoff,
  signal?: AbortSignal,
): Promise<void> {
  const ended = new Promise<void>((resolve, reject) => {
    z.on("end", resolve);
    z.on("error", reject);
  });
  ended.catch(() => {});
  const stage = new Uint8Array(STAGE_SIZE);
  let used = 0;
  const flush = async () => {
    if (used === 0) return;
    await new Promise<void>((resolve, reject) =>
      z.write(stage.subarray(0, used), (err?: Error | null) => (err ? reject(err) : resolve()))
    );
    used = 0;
  };
  const reader = readable.getReader();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      for (let at = 0; at < value.length;) {
        const n = Math.min(value.length - at, STAGE_SIZE - used);
        stage.set(value.subarray(at, at + n), used);
        used += n;
        at += n;
        if (used === STAGE_SIZE) await flush();
      }
      handoff.copied(value);
    }
    await flush();
    z.end();
    await ended;
  } catch (err) {
    handoff.fail(err);
    await reader.cancel(err).catch(() => {});
    z.destroy();
    throw err;
  }
}

async function encode(options: PackOptions, level: number, sink: Sink): Promise<PackResult> {
  const clamp = await newestSource(options.root, options.skipAtRoot);
  const hash = createHash("sha256");
  let bytes = 0;
  const z = compressor(options.format, level);
  z.on("data", (chunk: Uint8Array) => {
    hash.update(chunk);
    bytes += chunk.length;
    sink(chunk);
  });
  const { readable, controller } = createTarPacker();
  const handoff = new Handoff();
  const written = compress(readable, z, handoff, options.signal);
  written.catch(() => {});
  const unpatched: string[] = [];
  let entries = 0;
  try {
    const walk = walkTree(options.root, {
      clamp,
      skipAtRoot: options.skipAtRoot,
      signal: options.signal,
    });
    for await (const entry of walk) {
      await addEntry(controller, options.root, entry, unpatched, handoff);
      entries++;
      options.onEntry?.(entries);
    }
    controller.finalize();
  } catch (err) {
    controller.error(err);
    await written.catch(() => {});
    throw err;
  }
  await written;
  return { sha256: hash.digest("hex"), bytes, entries, unpatched };
}

/**
 * Adds or replaces `name`'s line in the `SHA256SUMS` of `dir` (`<hex>  <name>` lines, as
 * python-build-standalone publishes them, sorted by name), atomically.
 */
export async function updateSums(dir: string, name: string, sha256: string): Promise<string> {
  // Two packs into one folder at once must not lose each other's line.
  const lock = await Deno.open(join(dir, ".SHA256SUMS.lock"), { create: true, write: true });
  try {
    await lock.lock(true);
    return await rewriteSums(dir, name, sha256);
  } finally {
    lock.close();
  }
}

async function rewriteSums(dir: string, name: string, sha256: string): Promise<string> {
  const path = join(dir, "SHA256SUMS");
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new PyprimeError(`Cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "" && l.slice(66) !== name);
  lines.push(`${sha256}  ${name}`);
  lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : a.slice(66) > b.slice(66) ? 1 : 0));
  const tmp = join(dir, `.SHA256SUMS.tmp-${crypto.randomUUID()}`);
  try {
    await Deno.writeTextFile(tmp, lines.join("\n") + "\n", { mode: 0o644 });
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new PyprimeError(`Cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  return path;
}
