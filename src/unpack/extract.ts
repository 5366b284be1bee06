/**
 * Safe, streaming extraction of a (decompressed) tar stream into an empty folder.
 * `modern-tar` decodes headers and bodies; the policy is ours: every entry lands
 * inside the destination or the whole extraction fails with `UnsafeEntryError`,
 * corrupt input fails with `ArchiveError`, and nothing is ever written through a
 * symbolic link. Pure path and link rules live in `entry_policy.ts`.
 *
 * @module
 */
import { createTarDecoder, type TarHeader } from "modern-tar";
import { readError, writeError } from "./extract_errors.ts";
import {
  checkEntryType,
  checkPathLength,
  checkSymlinkTarget,
  dirMode,
  entryPath,
  fileMode,
  hardLinkTarget,
  limitError,
  PathIndex,
} from "./entry_policy.ts";
import { effectiveLimits, type ExtractLimits, StreamBudget } from "./limits.ts";
import { concat } from "../bytes.ts";
import { depth, setMtime, validDate, writeAllSync } from "./write.ts";

/** Options of {@link extractTar}. */
export interface ExtractOptions {
  /** Absolute path of an existing, empty directory; nothing is ever written outside it. */
  dest: string;
  /** Label for messages, e.g. the archive file name or URL. */
  label?: string;
  /**
   * Maps a normalized entry name (no leading "./", no trailing "/") to a relative
   * path under dest, or null to skip the entry. May throw (e.g. ArchiveError) to
   * reject. Default: identity. Applied to hard-link targets too.
   */
  mapName?: (name: string) => string | null;
  /** Overrides of {@link DEFAULT_LIMITS}. */
  limits?: Partial<ExtractLimits>;
  /** Aborting rejects the extraction promptly with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Called after each regular file (or hard link) is completely written and closed,
   * with its path relative to dest and its size.
   */
  onFile?: (relPath: string, size: number) => void;
  /**
   * Called for every path a file, hard link or symbolic link entry creates or
   * replaces, once it is written (see {@link WrittenPath}).
   */
  onPath?: (relPath: string, written: WrittenPath) => void;
}

/** What {@link ExtractOptions.onPath} hears of one path. */
export interface WrittenPath {
  kind: "file" | "hardlink" | "symlink";
  /** The body's size (a hard link's target's size; 0 for a link). */
  size: number;
  /** The first bytes of a regular file: 16, or fewer when it or its first read is shorter. */
  head?: Uint8Array;
}

/** What an extraction created. */
export interface ExtractResult {
  /** Archive entries read, skipped ones included. */
  entries: number;
  /** Regular files written. */
  files: number;
  /** Directory entries extracted (implicitly created parents not counted). */
  dirs: number;
  /** Symbolic links created. */
  symlinks: number;
  /** Hard links created. */
  hardlinks: number;
  /** Bytes of regular-file bodies written. */
  bytes: number;
}

/**
 * Files up to this size are collected and written with one `writeFile` call (open,
 * fchmod, write, close in a single op); larger ones are streamed chunk by chunk.
 * Measured on the CPython 3.12 stdlib: 0, 16, 64 and 256 KiB are within noise of
 * each other; 64 KiB saves ops per small file while bounding memory.
 */
const SMALL_FILE = 64 * 1024;

type Entry = { header: TarHeader; body: ReadableStream<Uint8Array> };

/**
 * Extracts the tar byte stream `tar` into `options.dest` under the safety policy:
 * no absolute paths, `..`, NUL bytes or empty names; symbolic links only to relative
 * targets that stay inside; never writing through a link; hard links only to files
 * this archive wrote; no devices, FIFOs or sparse files; setuid/setgid/sticky bits
 * cleared; archive mtimes kept on files and directories; limits enforced.
 *
 * The whole stream is consumed (so a digest tap upstream sees every byte) and
 * back-pressure holds end to end: only files up to 64 KiB are buffered.
 *
 * @throws {UnsafeEntryError} naming the entry and the rule it broke.
 * @throws {ArchiveError} for a corrupt or truncated tar or an upstream read error.
 * @example
 * ```ts
 * const file = await Deno.open("python.tar");
 * const result = await extractTar(file.readable, { dest: "/tmp/staging", label: "python.tar" });
 * console.log(`${result.files} files, ${result.bytes} bytes`);
 * ```
 */
export async function extractTar(
  tar: ReadableStream<Uint8Array>,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const pipe = new AbortController();
  const onAbort = () => pipe.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const extraction = new Extraction(options);
  const decoder = createTarDecoder({ strict: true });
  // Every byte of the tar stream counts, trailing bytes after end-of-archive included:
  // a small archive must not make pyprime read gigabytes of padding.
  const piping = tar.pipeThrough(extraction.counter).pipeTo(decoder.writable, {
    signal: pipe.signal,
  });
  piping.catch(() => {});
  const reader = decoder.readable.getReader();
  try {
    while (true) {
      const { done, value } = await extraction.read(() => reader.read());
      if (done) break;
      await extraction.entry(value);
    }
    await extraction.read(() => piping);
    extraction.finishDirectories();
    return extraction.result;
  } catch (error) {
    // Cancelling the reader unblocks the decoder; aborting the pipe cancels the source.
    reader.cancel(error).catch(() => {});
    pipe.abort(error);
    throw signal?.aborted ? signal.reason : error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

interface DirMeta {
  mode: number;
  mtime?: Date;
}

/** State of one extraction: limits, the index of created paths, counters. */
class Extraction {
  readonly result: ExtractResult = {
    entries: 0,
    files: 0,
    dirs: 0,
    symlinks: 0,
    hardlinks: 0,
    bytes: 0,
  };
  readonly #dest: string;
  readonly #label: string;
  readonly #limits: ExtractLimits;
  readonly #mapName: (name: string) => string | null;
  readonly #signal?: AbortSignal;
  readonly #onFile?: (relPath: string, size: number) => void;
  readonly #onPath?: (relPath: string, written: WrittenPath) => void;
  readonly #index = new PathIndex();
  /** Explicit directory entries; their mode and mtime are applied at the end. */
  readonly #dirMeta = new Map<string, DirMeta>();
  readonly #budget: StreamBudget;
  /** Counts the tar bytes against the budget. */
  get counter(): TransformStream<Uint8Array, Uint8Array> {
    return this.#budget.counter();
  }

  constructor(options: ExtractOptions) {
    if (!options.dest.startsWith("/")) {
      throw new TypeError(`extractTar: dest must be absolute, got ${JSON.stringify(options.dest)}`);
    }
    this.#dest = options.dest.length > 1 ? options.dest.replace(/\/+$/, "") : options.dest;
    this.#label = options.label ?? "the archive";
    this.#limits = effectiveLimits(options.limits);
    this.#budget = new StreamBudget(this.#limits, this.#label);
    this.#mapName = options.mapName ?? ((name) => name);
    this.#signal = options.signal;
    this.#onFile = options.onFile;
    this.#onPath = options.onPath;
  }

  /** Runs a read of the decoded stream, turning any failure into an ArchiveError. */
  async read<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      throw readError(this.#label, error);
    }
  }

  /**
   * Applies the policy to one decoded entry. A skipped body is cancelled so the
   * decoder moves on; on failure the caller cancels the whole decoder.
   */
  async entry({ header, body }: Entry): Promise<void> {
    this.#signal?.throwIfAborted();
    const name = header.name;
    if (++this.result.entries > this.#limits.maxEntries) {
      throw limitError(
        name,
        "maxEntries",
        `the archive has more than ${this.#limits.maxEntries} entries`,
      );
    }
    // Refused at its header, before any byte of it is read.
    this.#budget.declare(name, header.size, this.result.entries);
    checkEntryType(header);
    const type = header.type ?? "file";
    const rel = entryPath(name, type === "directory", this.#mapName, this.#limits.maxPathLength);
    if (rel === null) {
      if (header.size > 0) await body.cancel();
      return;
    }
    if (type === "file") await this.#file(name, rel, header, body);
    else if (type === "directory") this.#directory(name, rel, header);
    else if (type === "symlink") this.#symlink(name, rel, header.linkname ?? "");
    else this.#hardlink(name, rel, header.linkname ?? "");
  }

  async #file(
    entry: string,
    rel: string,
    header: TarHeader,
    body: ReadableStream<Uint8Array>,
  ): Promise<void> {
    const size = header.size;
    this.#prepareFile(entry, rel);
    const path = `${this.#dest}/${rel}`;
    const mode = fileMode(header.mode ?? 0o644);
    let head: Uint8Array | undefined;
    if (size <= SMALL_FILE) {
      const data = size === 0 ? new Uint8Array(0) : await this.#readAll(body, size);
      this.#fs(entry, rel, () => {
        Deno.writeFileSync(path, data, { createNew: true, mode });
        setMtime(path, header.mtime);
      });
      head = data.slice(0, 16);
    } else {
      head = await this.#streamFile(entry, rel, path, mode, header.mtime, body);
    }
    this.#index.addFile(rel, size);
    this.result.files++;
    this.result.bytes += size;
    this.#onFile?.(rel, size);
    this.#onPath?.(rel, { kind: "file", size, head });
  }

  /**
   * Checks that a regular file or hard link may be created at `rel` and makes room:
   * parents are created; an earlier file there is removed (later entries win, as
   * with tar; removing rather than truncating keeps hard links to it intact).
   */
  #prepareFile(entry: string, rel: string): void {
    const claim = this.#index.claim(rel, entry, "file");
    this.#mkdirs(entry, this.#index.missingParents(rel, entry));
    if (claim === "replace") this.#fs(entry, rel, () => Deno.removeSync(`${this.#dest}/${rel}`));
  }

  async #readAll(body: ReadableStream<Uint8Array>, size: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of this.#chunks(body)) chunks.push(chunk);
    return concat(chunks, size);
  }

  async #streamFile(
    entry: string,
    rel: string,
    path: string,
    mode: number,
    mtime: Date | undefined,
    body: ReadableStream<Uint8Array>,
  ): Promise<Uint8Array | undefined> {
    const file = this.#fs(entry, rel, () => Deno.openSync(path, { write: true, createNew: true }));
    let head: Uint8Array | undefined;
    try {
      for await (const chunk of this.#chunks(body)) {
        head ??= chunk.slice(0, 16);
        this.#fs(entry, rel, () => writeAllSync(file, chunk));
      }
      this.#fs(entry, rel, () => {
        // The open handle has no chmod in Deno; the path is the regular file just
        // created with createNew, so chmod by path cannot follow a link.
        Deno.chmodSync(path, mode);
        if (validDate(mtime)) file.utimeSync(mtime, mtime);
      });
    } finally {
      file.close();
    }
    return head;
  }

  /**
   * The body's chunks; read errors (truncation, upstream failures) become
   * ArchiveError. The reader is never released: releasing builds an error object
   * per entry, which showed up in profiles; a finished body needs no release.
   */
  async *#chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
    const reader = body.getReader();
    while (true) {
      const { done, value } = await this.read(() => reader.read());
      if (done) return;
      yield value;
    }
  }

  #directory(entry: string, rel: string, header: TarHeader): void {
    if (this.#index.claim(rel, entry, "dir") === "new") {
      this.#mkdirs(entry, [...this.#index.missingParents(rel, entry), rel]);
    }
    // A repeated directory entry updates the metadata: the last one wins.
    this.#dirMeta.set(rel, { mode: dirMode(header.mode ?? 0o755), mtime: header.mtime });
    this.result.dirs++;
  }

  #symlink(entry: string, rel: string, linkname: string): void {
    const claim = this.#index.claim(rel, entry, "symlink");
    const target = checkSymlinkTarget(entry, rel, linkname);
    checkPathLength(entry, target, "link target", this.#limits.maxPathLength);
    this.#mkdirs(entry, this.#index.missingParents(rel, entry));
    const path = `${this.#dest}/${rel}`;
    this.#fs(entry, rel, () => {
      if (claim === "replace") Deno.removeSync(path);
      // Symlink mtimes are not restored: Deno has no lutimes, and nothing reads them.
      Deno.symlinkSync(target, path);
    });
    this.#index.addSymlink(rel);
    this.result.symlinks++;
    this.#onPath?.(rel, { kind: "symlink", size: 0 });
  }

  #hardlink(entry: string, rel: string, linkname: string): void {
    const { target, size } = hardLinkTarget(entry, rel, linkname, this.#mapName, this.#index);
    this.#prepareFile(entry, rel);
    this.#fs(entry, rel, () => Deno.linkSync(`${this.#dest}/${target}`, `${this.#dest}/${rel}`));
    this.#index.addFile(rel, size);
    this.result.hardlinks++;
    this.#onFile?.(rel, size);
    this.#onPath?.(rel, { kind: "hardlink", size });
  }

  /** Creates `dirs` (shallowest first) and records them. */
  #mkdirs(entry: string, dirs: string[]): void {
    for (const dir of dirs) {
      this.#fs(entry, dir, () => Deno.mkdirSync(`${this.#dest}/${dir}`));
      this.#index.addDir(dir);
    }
  }

  /**
   * Applies directory modes and mtimes, deepest first: creating a child changes its
   * parent's mtime, so this waits until every entry is written.
   */
  finishDirectories(): void {
    const dirs = [...this.#dirMeta].sort(([a], [b]) => depth(b) - depth(a));
    for (const [rel, { mode, mtime }] of dirs) {
      const path = `${this.#dest}/${rel}`;
      this.#fs(rel, rel, () => {
        Deno.chmodSync(path, mode);
        setMtime(path, mtime);
      });
    }
  }

  /** Runs a file-system step, translating its errors (see {@link fsError}). */
  #fs<T>(entry: string, rel: string, step: () => T): T {
    try {
      return step();
    } catch (error) {
      throw writeError(this.#dest, entry, rel, error);
    }
  }
}
