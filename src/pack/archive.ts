/**
 * Writes an installation as a python-build-standalone `install_only`-shaped archive
 * (every entry under `python/`), in one stream: tree walk → modern-tar's encoder →
 * zstd or gzip → sha256 → a temporary file in the output's folder, renamed into place
 * only when complete. Memory holds one directory listing per level of the walk and a
 * few chunks in flight, whatever the tree's size.
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
import { nodeTransform } from "../unpack/decompress.ts";
import { sha256Tap } from "../fetch/digest.ts";
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
 * Bytes handed to the tar encoder but not yet taken by the compressor side. The
 * encoder queues up to 8 MiB of chunks; chunks that wait that long outlive V8's young
 * generation and stay as garbage until a full collection (peak RSS 120–220 MB on the
 * fixture). Holding the producer to {@link IN_FLIGHT} keeps every chunk short-lived.
 */
class Throttle {
  #fed = 0;
  #taken = 0;
  #wake: (() => void) | undefined;
  constructor(readonly limit: number) {}

  /** Waits until fewer than `limit` bytes are in flight, then counts `n` more. */
  async feed(n: number): Promise<void> {
    while (this.#fed - this.#taken > this.limit) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    this.#fed += n;
  }

  /** Counts `n` bytes taken by the consumer. */
  take(n: number): void {
    this.#taken += n;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Releases a waiting producer for good (the consumer failed). */
  release(): void {
    this.#taken = Infinity;
    this.#wake?.();
  }
}

/** Bytes in flight between the walk and the compressor. */
const IN_FLIGHT = 256 * 1024;

/** Bytes read from a file per call. */
const READ_SIZE = 64 * 1024;

/** Merges the encoder's many small chunks (512-byte headers) into big compressor calls. */
function coalesce(throttle: Throttle, size = 256 * 1024): TransformStream<Uint8Array, Uint8Array> {
  let buf = new Uint8Array(size);
  let used = 0;
  return new TransformStream({
    transform(chunk, ctl) {
      throttle.take(chunk.length);
      if (used + chunk.length > size && used > 0) {
        ctl.enqueue(buf.slice(0, used));
        used = 0;
      }
      if (chunk.length >= size) ctl.enqueue(chunk.slice());
      else {
        buf.set(chunk, used);
        used += chunk.length;
      }
    },
    flush(ctl) {
      if (used > 0) ctl.enqueue(buf.slice(0, used));
      buf = new Uint8Array(0);
    },
  });
}

/** Standard output as a sink that is never closed (messages may follow). */
function stdoutSink(): WritableStream<Uint8Array> {
  return new WritableStream({
    async write(chunk) {
      for (let at = 0; at < chunk.length;) at += await Deno.stdout.write(chunk.subarray(at));
    },
  });
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
  throttle: Throttle,
): Promise<void> {
  const path = join(root, entry.rel);
  await throttle.feed(512);
  if (entry.kind === "file" && isRewritten(entry.rel)) {
    const original = await Deno.readFile(path);
    const bytes = unpatch(entry.rel, original) ?? original;
    if (bytes !== original) unpatched.push(entry.rel);
    const body = controller.add(header(entry, bytes.length)).getWriter();
    await throttle.feed(bytes.length);
    if (bytes.length) await body.write(bytes);
    return await body.close();
  }
  const body = controller.add(header(entry, entry.size)).getWriter();
  if (entry.kind !== "file" || entry.size === 0) return await body.close();
  const file = await Deno.open(path, { read: true });
  try {
    let seen = 0;
    for (;;) {
      const chunk = new Uint8Array(Math.min(READ_SIZE, entry.size - seen + 1));
      const n = await file.read(chunk);
      if (n === null) break;
      seen += n;
      if (seen > entry.size) {
        throw new PyprimeError(`Cannot pack ${path}: it grew while being read`);
      }
      await throttle.feed(n);
      await body.write(chunk.subarray(0, n));
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
  let sink: WritableStream<Uint8Array>;
  if (tmp === undefined) sink = stdoutSink();
  else {
    try {
      const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      sink = file.writable;
    } catch (err) {
      throw new PyprimeError(`Cannot write ${options.output}: ${(err as Error).message}`, {
        cause: err,
        hint: "pass -o FILE in a folder you can write, or -o - for standard output",
      });
    }
  }
  try {
    const result = await encode(options, level, sink);
    if (tmp !== undefined) await Deno.rename(tmp, options.output);
    return result;
  } catch (err) {
    if (tmp !== undefined) await Deno.remove(tmp).catch(() => {});
    throw options.signal?.aborted ? options.signal.reason : err;
  }
}

async function encode(
  options: PackOptions,
  level: number,
  sink: WritableStream<Uint8Array>,
): Promise<PackResult> {
  const clamp = await newestSource(options.root, options.skipAtRoot);
  const tap = sha256Tap();
  const { readable, controller } = createTarPacker();
  const squeeze = nodeTransform(compressor(options.format, level));
  const throttle = new Throttle(IN_FLIGHT);
  const written = readable.pipeThrough(coalesce(throttle))
    .pipeThrough(squeeze, { signal: options.signal })
    .pipeThrough(tap.stream)
    .pipeTo(sink);
  written.catch(() => throttle.release());
  const unpatched: string[] = [];
  let entries = 0;
  try {
    const walk = walkTree(options.root, {
      clamp,
      skipAtRoot: options.skipAtRoot,
      signal: options.signal,
    });
    for await (const entry of walk) {
      await addEntry(controller, options.root, entry, unpatched, throttle);
      options.onEntry?.(++entries);
    }
    controller.finalize();
  } catch (err) {
    controller.error(err);
    await written.catch(() => {});
    throw err;
  }
  await written;
  return { sha256: await tap.digest, bytes: tap.bytes(), entries, unpatched };
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
