/**
 * Byte sources: a local file, standard input, or (through `download.ts`) a URL or
 * mirror. Each becomes an {@link ArchiveSource}: a stream plus a label.
 *
 * @module
 */
import { basename, resolve } from "node:path";
import { PyprimeError } from "../errors.ts";

/** A stream of archive bytes and what to call it in messages. */
export interface ArchiveSource {
  /** The raw (possibly compressed) archive bytes. */
  stream: ReadableStream<Uint8Array>;
  /** File name or URL, for messages. */
  label: string;
  /** Total size when known, for progress. */
  size?: number;
  /** Called once the digest matched (keeps a download in the cache). */
  commit?: () => Promise<void>;
  /** Called when the install failed (drops a partial cache file, or evicts a bad cached one). */
  discard?: () => Promise<void>;
  /** The bytes come from the download cache. */
  fromCache?: boolean;
}

/**
 * Opens a local archive file for streaming.
 *
 * @example
 * ```ts
 * const source = await openFile("cpython-3.12.1+20991231-x86_64-unknown-linux-gnu-install_only.tar.gz");
 * ```
 */
export async function openFile(path: string): Promise<ArchiveSource> {
  const full = resolve(path);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(full, { read: true });
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (err as Error).message;
    throw new PyprimeError(`Cannot read archive ${path}: ${why}`, {
      cause: err,
      hint: "pass the path of a python-build-standalone .tar.gz or .tar.zst archive",
    });
  }
  const stat = await file.stat();
  if (!stat.isFile) {
    file.close();
    throw new PyprimeError(`Cannot read archive ${path}: not a regular file`, {
      hint: "pass the path of an archive file, or - to read standard input",
    });
  }
  return { stream: readChunks(file), label: basename(full), size: stat.size };
}

/**
 * Bytes read per call: `FsFile.readable`'s 64 KiB reads measured ~25% slower end to end,
 * and 1 MiB reads raised peak RSS by ~20 MB on a 4× archive (docs/benchmarks.md).
 */
const READ_SIZE = 256 * 1024;

/** A pull-based stream over `file` in 256 KiB reads; closes the file when done or cancelled. */
export function readChunks(file: Deno.FsFile): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(READ_SIZE);
      const n = await file.read(buffer);
      if (n === null) {
        file.close();
        controller.close();
      } else {
        controller.enqueue(buffer.subarray(0, n));
      }
    },
    cancel() {
      file.close();
    },
  }, { highWaterMark: 1 });
}

/** Standard input as an archive source (`pyprime install -`). */
export function openStdin(): ArchiveSource {
  return { stream: Deno.stdin.readable, label: "standard input" };
}
