/**
 * Decompression chosen by magic bytes, never by file name: gzip, zstd, or a plain
 * tar passed through. Unsupported formats (xz, bzip2, zip) fail with a clear error.
 *
 * @module
 */
import zlib from "node:zlib";
import type { Transform } from "node:stream";
import { ArchiveError } from "../errors.ts";

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

function zstdDecompressor(): Transform {
  // PBS archives are written with long-distance matching windows; without a 2 GiB
  // window limit zstd refuses frames that `zstd --long=31` produced.
  return zlib.createZstdDecompress({
    chunkSize: CHUNK,
    params: { [zlib.constants.ZSTD_d_windowLogMax]: 31 },
  });
}

/** Magic number of a zstd frame, little-endian. */
const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Decodes every frame of a zstd stream, each with its own decompressor: a valid file
 * may hold several frames (`zstd` writes one per input when files are concatenated,
 * `pzstd` one per chunk) and skippable frames (metadata), and Deno's decompressor stops
 * after the first frame. The frame boundaries are found from the frame and block
 * headers (RFC 8878), so bytes after the last frame that are not a frame are refused.
 */
function zstdFrames(input: ReadableStream<Uint8Array>, label: string): ReadableStream<Uint8Array> {
  const bytes = new ByteReader(input.getReader());
  const corrupt = (what: string) =>
    new ArchiveError(`Cannot read archive ${label}: ${what}`, {
      hint: "the archive is corrupt or incomplete; download it again",
    });
  async function* frames(): AsyncGenerator<Uint8Array> {
    for (let frame = 0;; frame++) {
      const magic = await bytes.exact(4, frame === 0 ? "zstd frame" : undefined);
      if (magic === undefined) return;
      const number = new DataView(magic.buffer, magic.byteOffset, 4).getUint32(0, true);
      if ((number & 0xfffffff0) >>> 0 === 0x184d2a50) {
        const size = await bytes.exact(4, "skippable frame");
        await bytes.skip(new DataView(size!.buffer, size!.byteOffset, 4).getUint32(0, true));
        continue;
      }
      if (number !== ZSTD_MAGIC) {
        throw corrupt(
          frame === 0 ? "not a zstd frame" : "unexpected bytes after the last zstd frame",
        );
      }
      const t = nodeTransform(zstdDecompressor());
      const writer = t.writable.getWriter();
      const feeding = feedFrame(magic, writer).catch(async (err) => {
        await writer.abort(err).catch(() => {});
        throw err;
      });
      feeding.catch(() => {});
      for await (const chunk of t.readable) yield chunk;
      await feeding;
    }
  }
  async function feedFrame(magic: Uint8Array, writer: WritableStreamDefaultWriter<Uint8Array>) {
    await writer.write(magic);
    const scanner = new FrameScanner(corrupt);
    for (;;) {
      const chunk = await bytes.chunk();
      if (chunk === undefined) throw new Error("the archive is truncated (in a zstd frame)");
      // Whole chunks go to the decompressor; only the frame's last one is cut.
      const used = scanner.scan(chunk);
      await writer.write(used === chunk.length ? chunk : chunk.subarray(0, used));
      if (scanner.done) {
        bytes.unshift(chunk.subarray(used));
        break;
      }
    }
    await writer.close();
  }
  return ReadableStream.from(frames());
}

/**
 * Follows one zstd frame (after its magic) through its header, block headers and
 * checksum (RFC 8878) without copying bodies, to find where the frame ends.
 */
class FrameScanner {
  done = false;
  #state: "fhd" | "header" | "block" | "skip" = "fhd";
  #checksum = false;
  #need = 1;
  #acc: number[] = [];
  #skip = 0;
  #descriptor = 0;
  #last = false;

  constructor(readonly corrupt: (what: string) => Error) {}

  /** Consumes the frame's bytes at the start of `chunk`; returns how many are the frame's. */
  scan(chunk: Uint8Array): number {
    let i = 0;
    while (i < chunk.length && !this.done) {
      if (this.#state === "skip") {
        const take = Math.min(this.#skip, chunk.length - i);
        i += take;
        this.#skip -= take;
        if (this.#skip === 0) this.#afterSkip();
        continue;
      }
      this.#acc.push(chunk[i++]);
      if (this.#acc.length === this.#need) this.#header(this.#acc.splice(0));
    }
    return i;
  }

  #header(b: number[]): void {
    if (this.#state === "fhd") {
      const d = this.#descriptor = b[0];
      if (d & 0x08) throw this.corrupt("zstd frame header has its reserved bit set");
      const single = (d >> 5) & 1;
      const size = (single ? 0 : 1) + [0, 1, 2, 4][d & 3] + [single ? 1 : 0, 2, 4, 8][d >> 6];
      if (size > 0) return this.#expect("header", size);
      return this.#expect("block", 3);
    }
    if (this.#state === "header") return this.#expect("block", 3);
    // A block header: last-block bit, type, size.
    const h = b[0] | (b[1] << 8) | (b[2] << 16);
    const type = (h >> 1) & 3;
    if (type === 3) throw this.corrupt("zstd block of reserved type");
    this.#last = (h & 1) === 1;
    this.#skip = type === 1 ? 1 : h >>> 3;
    this.#state = "skip";
    if (this.#skip === 0) this.#afterSkip();
  }

  #afterSkip(): void {
    if (!this.#last) {
      this.#expect("block", 3);
    } else if ((this.#descriptor & 0x04) && !this.#checksum) {
      this.#checksum = true;
      this.#skip = 4; // the content checksum, still in state "skip"
    } else {
      this.done = true;
    }
  }

  #expect(state: "header" | "block", n: number): void {
    this.#state = state;
    this.#need = n;
  }
}

/** Exact reads over a stream reader, for parsing headers between pass-through bodies. */
class ByteReader {
  #buffer: Uint8Array = new Uint8Array(0);
  #done = false;
  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const { done, value } = await this.reader.read();
    if (done) {
      this.#done = true;
      return false;
    }
    this.#buffer = this.#buffer.length
      ? concat([this.#buffer, value], this.#buffer.length + value.length)
      : value;
    return true;
  }

  /**
   * `n` bytes; `undefined` at a clean end of stream before the first byte when `what`
   * is undefined, else an ArchiveError "truncated" naming `what`.
   */
  async exact(n: number, what?: string): Promise<Uint8Array | undefined> {
    while (this.#buffer.length < n) {
      if (!(await this.#fill())) {
        if (this.#buffer.length === 0 && what === undefined) return undefined;
        throw new Error(`the archive is truncated (in a ${what ?? "zstd frame"})`);
      }
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** Hands the next `n` bytes to `sink` in the chunks they arrive in. */
  async pass(n: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    while (n > 0) {
      if (this.#buffer.length === 0 && !(await this.#fill())) {
        throw new Error("the archive is truncated (in a zstd block)");
      }
      const take = Math.min(n, this.#buffer.length);
      await sink(this.#buffer.subarray(0, take));
      this.#buffer = this.#buffer.subarray(take);
      n -= take;
    }
  }

  /** The buffered bytes or the next chunk; `undefined` at the end of the stream. */
  async chunk(): Promise<Uint8Array | undefined> {
    if (this.#buffer.length === 0 && !(await this.#fill())) return undefined;
    const out = this.#buffer;
    this.#buffer = new Uint8Array(0);
    return out;
  }

  /** Puts `bytes` back in front of what is buffered. */
  unshift(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#buffer = this.#buffer.length
      ? concat([bytes, this.#buffer], bytes.length + this.#buffer.length)
      : bytes;
  }

  /** Drops the next `n` bytes. */
  async skip(n: number): Promise<void> {
    await this.pass(n, () => Promise.resolve());
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
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
  // zlib reports a bad CRC or a corrupt frame as an 'error' event and may never call
  // a pending write callback or emit 'drain': every waiter must be rejected here.
  const waiting = new Set<(err: Error) => void>();
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
    for (const fail of [...waiting]) fail(err);
  });
  const wait = (start: (resolve: () => void) => void) =>
    new Promise<void>((resolve, reject) => {
      if (failure) return reject(failure);
      const fail = (err: Error) => {
        waiting.delete(fail);
        reject(err);
      };
      waiting.add(fail);
      start(() => {
        waiting.delete(fail);
        failure ? reject(failure) : resolve();
      });
    });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (ended) return;
      return wait((resolve) => {
        if (t.write(chunk)) resolve();
        else t.once("drain", resolve);
      });
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
