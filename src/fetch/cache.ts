/**
 * The download cache: bytes are teed into a `.part` file next to the final name, and
 * moved into place only once the downstream digest matched.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { ChecksumMismatchError, PyprimeError } from "../errors.ts";
import { removeIfExists } from "../fs.ts";
import { describeError as describe } from "./network_error.ts";

/** Writes the streamed bytes to `.<name>.<random>.part` next to the final cache file. */
export class CacheWriter {
  #file?: Deno.FsFile;
  #hash?: Hash;
  #state: "writing" | "complete" | "failed" | "committed" | "gone" = "writing";
  #failure?: unknown;

  private constructor(
    readonly finalPath: string,
    readonly partPath: string,
    file: Deno.FsFile | undefined,
    failure: unknown,
    readonly expectedSha256: string | undefined,
  ) {
    this.#file = file;
    if (failure !== undefined) {
      this.#state = "failed";
      this.#failure = failure;
    }
    if (expectedSha256 !== undefined) this.#hash = createHash("sha256");
  }

  /** Opens the part file; a cache that cannot be written is reported by commit(). */
  static async create(finalPath: string, expectedSha256?: string): Promise<CacheWriter> {
    const dir = dirname(finalPath);
    const name = basename(finalPath);
    const random = crypto.getRandomValues(new Uint8Array(6));
    const suffix = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
    const partPath = join(dir, `.${name}.${suffix}.part`);
    try {
      await Deno.mkdir(dir, { recursive: true });
      const file = await Deno.open(partPath, { write: true, createNew: true, mode: 0o644 });
      return new CacheWriter(finalPath, partPath, file, undefined, expectedSha256?.toLowerCase());
    } catch (error) {
      return new CacheWriter(finalPath, partPath, undefined, error, expectedSha256);
    }
  }

  /** Appends `chunk`; a write error only disables the cache, never the download. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "writing") return;
    try {
      for (let offset = 0; offset < chunk.byteLength;) {
        offset += await this.#file!.write(chunk.subarray(offset));
      }
      this.#hash?.update(chunk);
    } catch (error) {
      this.#failure = error;
      this.#state = "failed";
      await this.#removePart();
    }
  }

  /** The stream reached its end: the part file is complete. */
  finish(): void {
    if (this.#state !== "writing") return;
    this.#closeFile();
    this.#state = "complete";
  }

  /** The stream failed or was cancelled: nothing can be committed any more. */
  async abandon(): Promise<void> {
    if (this.#state === "writing" || this.#state === "complete") {
      this.#state = "gone";
      await this.#removePart();
    }
  }

  async commit(): Promise<void> {
    if (this.#state === "committed") return;
    if (this.#state === "failed") {
      throw new PyprimeError(`Cannot cache ${this.finalPath}: ${describe(this.#failure)}`, {
        cause: this.#failure,
        hint: "the install is fine; check that the cache folder is writable and has space",
      });
    }
    if (this.#state !== "complete") {
      await this.discard();
      throw new PyprimeError(
        `Cannot cache ${this.finalPath}: the download was not read to the end`,
      );
    }
    const actual = this.#hash?.digest("hex");
    if (this.expectedSha256 !== undefined && actual !== this.expectedSha256) {
      await this.discard();
      throw new ChecksumMismatchError(this.finalPath, this.expectedSha256, actual ?? "");
    }
    await Deno.rename(this.partPath, this.finalPath);
    this.#state = "committed";
  }

  async discard(): Promise<void> {
    if (this.#state === "committed") return;
    this.#state = "gone";
    await this.#removePart();
  }

  async #removePart(): Promise<void> {
    this.#closeFile();
    await removeIfExists(this.partPath).catch(() => {});
  }

  #closeFile(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}
