/**
 * Multi-frame zstd: every frame decoded with its own decompressor, skippable frames
 * skipped, anything else after the last frame refused.
 *
 * @module
 */
import { ArchiveError } from "../errors.ts";
import { concat } from "../bytes.ts";
import { nodeTransform, zstdDecompressor } from "./decompress.ts";

/** Magic number of a zstd frame, little-endian. */
const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Decodes every frame of a zstd stream, each with its own decompressor: a valid file
 * may hold several frames (`zstd` writes one per input when files are concatenated,
 * `pzstd` one per chunk) and skippable frames (metadata), and Deno's decompressor stops
 * after the first frame. The frame boundaries are found from the frame and block
 * headers (RFC 8878), so bytes after the last frame that are not a frame are refused.
 */
export function zstdFrames(
  input: ReadableStream<Uint8Array>,
  label: string,
): ReadableStream<Uint8Array> {
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
    while (n > 0) {
      if (this.#buffer.length === 0 && !(await this.#fill())) {
        throw new Error("the archive is truncated (in a skippable frame)");
      }
      const take = Math.min(n, this.#buffer.length);
      this.#buffer = this.#buffer.subarray(take);
      n -= take;
    }
  }
}
