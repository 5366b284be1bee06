/**
 * Decompression chosen by magic bytes, never by file name: gzip, zstd, or a plain
 * tar passed through. Unsupported formats (xz, bzip2, zip) fail with a clear error.
 *
 * @module
 */
import zlib from "node:zlib";
import type { Transform } from "node:stream";
import { concat } from "../bytes.ts";
import { ArchiveError } from "../errors.ts";
import { zstdFrames } from "./zstd.ts";

/** The container formats pyprime reads. */
export type ArchiveFormat = "gzip" | "zstd" | "tar";

/** The decompressed tar stream and the format it was found in. */
export interface Decompressed {
  /** What the magic bytes said. */
  format: ArchiveFormat;
  /** The tar bytes. */
  stream: ReadableStream<Uint8Array>;
}

const MAGIC: { format: ArchiveFormat | "xz" | "bzip2" | "zip"; bytes: number[] }[] = [
  { format: "gzip", bytes: [0x1f, 0x8b] },
  { format: "zstd", bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { format: "xz", bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { format: "bzip2", bytes: [0x42, 0x5a, 0x68] },
  { format: "zip", bytes: [0x50, 0x4b, 0x03, 0x04] },
];

/** Output chunk size of the decompressors: zlib's 16 KiB default costs per-chunk stream overhead. */
const CHUNK = 256 * 1024;

/** Bytes needed to tell a plain tar (the "ustar" magic sits at offset 257). */
const SNIFF_BYTES = 512;

/**
 * Identifies the format of the first bytes of an archive.
 *
 * @example
 * ```ts
 * sniffFormat(new Uint8Array([0x1f, 0x8b, 8])); // "gzip"
 * ```
 */
export function sniffFormat(head: Uint8Array): ArchiveFormat | "xz" | "bzip2" | "zip" {
  for (const { format, bytes } of MAGIC) {
    if (head.length >= bytes.length && bytes.every((b, i) => head[i] === b)) return format;
  }
  // A zstd file may start with a skippable frame (magic 0x184D2A5?, little-endian).
  if (head.length >= 4 && (head[0] & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d) {
    if (head[3] === 0x18) return "zstd";
  }
  return "tar";
}

/**
 * Reads the first bytes of `stream`, picks the decompressor by magic bytes and
 * returns the tar stream. `label` names the archive in error messages.
 *
 * @example
 * ```ts
 * const file = await Deno.open("cpython.tar.zst");
 * const { format, stream } = await decompress(file.readable, "cpython.tar.zst");
 * ```
 */
export async function decompress(
  stream: ReadableStream<Uint8Array>,
  label: string,
): Promise<Decompressed> {
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let headSize = 0;
  while (headSize < SNIFF_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    head.push(value);
    headSize += value.length;
  }
  if (headSize === 0) {
    throw new ArchiveError(`Cannot read archive ${label}: it is empty`, {
      hint: "check that the file or download is complete",
    });
  }
  const first = concat(head, headSize);
  const format = sniffFormat(first);
  if (format === "xz" || format === "bzip2" || format === "zip") {
    await reader.cancel();
    throw new ArchiveError(`Cannot read archive ${label}: ${format} is not supported`, {
      hint:
        "python-build-standalone archives are .tar.gz or .tar.zst; recompress with gzip or zstd",
    });
  }
  if (format === "tar" && looksLikeHtml(first)) {
    await reader.cancel();
    throw new ArchiveError(
      `Cannot read archive ${label}: not an archive but an HTML page (a directory listing, or an error or login page)`,
      { hint: "give the URL of the .tar.gz or .tar.zst file itself, not of its folder" },
    );
  }
  if (format === "tar" && !looksLikeTar(first)) {
    await reader.cancel();
    throw new ArchiveError(`Cannot read archive ${label}: it is not a gzip, zstd or tar archive`, {
      hint: "pass a python-build-standalone .tar.gz or .tar.zst (a download that returned an " +
        "HTML page or an error text is not one)",
    });
  }
  const replayed = replay(first, reader);
  // node:zlib's gunzip measured ~25% faster than DecompressionStream under Deno 2.9
  // (docs/benchmarks.md), so both compressed formats go through node:zlib.
  const tar = format === "gzip"
    ? replayed.pipeThrough(nodeTransform(zlib.createGunzip({ chunkSize: CHUNK })))
    : format === "zstd"
    ? zstdFrames(replayed, label)
    : replayed;
  return { format, stream: tar };
}

/**
 * Whether the first block can start a tar: the `ustar` magic, or (old formats) a
 * checksum field of octal digits, or an all-zero end-of-archive block. Text and random
 * bytes fail this, which is enough to tell "not an archive" from "a damaged tar".
 */
function looksLikeTar(head: Uint8Array): boolean {
  if (head.length < SNIFF_BYTES) return head.every((b) => b === 0) && head.length > 0;
  const block = head.subarray(0, SNIFF_BYTES);
  if (new TextDecoder().decode(block.subarray(257, 262)) === "ustar") return true;
  if (block.every((b) => b === 0)) return true;
  const checksum = new TextDecoder().decode(block.subarray(148, 156));
  return /^[ \0]*[0-7]+[ \0]*$/.test(checksum);
}

/** A web page where an archive was expected: `<!DOCTYPE html>`, `<html>`, `<h1>`… */
function looksLikeHtml(head: Uint8Array): boolean {
  const text = new TextDecoder().decode(head.subarray(0, 256)).trimStart().toLowerCase();
  return /^<(!doctype html|html|head|body|h1|title|pre|\?xml)\b/.test(text);
}

/** A zstd decompressor for one frame. */
export function zstdDecompressor(): Transform {
  // PBS archives are written with long-distance matching windows; without a 2 GiB
  // window limit zstd refuses frames that `zstd --long=31` produced.
  return zlib.createZstdDecompress({
    chunkSize: CHUNK,
    params: { [zlib.constants.ZSTD_d_windowLogMax]: 31 },
  });
}

/** A stream that yields `first`, then the rest of `reader`, pulling lazily. */
function replay(
  first: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  let sentFirst = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentFirst) {
        sentFirst = true;
        controller.enqueue(first);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Deno 2.9's zstd decompressor reports corrupt data (a flipped byte, a bad checksum)
 * by throwing from a later tick instead of emitting 'error': the error would end the
 * process uncaught and leave the staging folder behind, and the pending write would
 * never settle. So writes to the transforms of this module take turns (one chunk in
 * processing at a time, process-wide: the processing is synchronous on this thread
 * anyway), and such an uncaught error is taken back and given to the transform whose
 * turn it is. Several archives staged at once then never get each other's errors.
 */
let turnHolder: ((error: Error) => void) | undefined;
let turns: Promise<void> = Promise.resolve();
let openTransforms = 0;
function reclaimZstdError(event: ErrorEvent): void {
  const error = event.error;
  if (!(error instanceof Error) || !/^Zstd decompress error/.test(error.message)) return;
  if (turnHolder === undefined) return;
  event.preventDefault();
  turnHolder(error);
}

/**
 * Wraps a Node.js zlib transform as a web stream pair with back-pressure in both
 * directions: writes wait for 'drain', and the transform is paused whenever the
 * readable side is full, so a small archive that decompresses to gigabytes (a
 * "bomb") is held to a few chunks in memory while the extractor's limits apply.
 */
export function nodeTransform(
  t: Transform,
): { writable: WritableStream<Uint8Array>; readable: ReadableStream<Uint8Array> } {
  let failure: Error | undefined;
  let ended = false;
  let open = true;
  if (openTransforms++ === 0) globalThis.addEventListener("error", reclaimZstdError);
  const fail = (error: Error) => t.destroy(error);
  // zlib reports a bad CRC or a corrupt frame as an 'error' event and may never call
  // a pending write callback: every waiter is settled when the transform ends, fails
  // or closes, so that no turn is held forever.
  const waiting = new Set<(err?: Error) => void>();
  const closed = () => {
    for (const settle of [...waiting]) settle(failure);
    if (!open) return;
    open = false;
    if (--openTransforms === 0) globalThis.removeEventListener("error", reclaimZstdError);
  };
  t.on("close", closed);
  t.on("end", closed);
  let out!: ReadableStreamDefaultController<Uint8Array>;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      out = controller;
    },
    pull() {
      t.resume();
    },
    cancel() {
      done = true;
      t.destroy();
    },
  }, { highWaterMark: 4 });
  // Set once the readable side is closed, errored or cancelled: zlib may still emit a
  // buffered chunk after destroy(), which must not reach a closed controller.
  let done = false;
  t.on("data", (chunk: Uint8Array) => {
    if (done) return;
    out.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((out.desiredSize ?? 0) <= 0) t.pause();
  });
  // Deno's zstd decompressor may emit 'end' as soon as the last frame is decoded,
  // before end() is called: the readable side closes then.
  t.on("end", () => {
    ended = true;
    if (!done) out.close();
    done = true;
  });
  t.on("error", (err: Error) => {
    failure = err;
    if (!done) out.error(err);
    done = true;
    closed();
  });
  /** Writes `chunk` in this transform's turn; settles once zlib has processed it. */
  const write = (chunk: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (failure) return reject(failure);
      if (ended || !open) return resolve();
      const settle = (err?: Error) => {
        if (!waiting.delete(settle)) return;
        if (turnHolder === fail) turnHolder = undefined;
        err ? reject(err) : resolve();
      };
      waiting.add(settle);
      turnHolder = fail;
      t.write(chunk, (err?: Error | null) => settle(err ?? failure));
    });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (ended) return;
      const turn = turns.then(() => write(chunk));
      turns = turn.catch(() => {});
      return turn;
    },
    close() {
      if (!ended) t.end();
    },
    abort(reason) {
      t.destroy(reason instanceof Error ? reason : undefined);
    },
  });
  return { writable, readable };
}
