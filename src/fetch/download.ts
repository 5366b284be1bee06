/**
 * The byte source of `pyprime install`: turns a `file://` or `http(s)://` URL into one
 * pull-based `ReadableStream` that behaves like a single, correct byte stream even
 * when the connection drops, so the sha256 computed downstream stays right.
 *
 * HTTP faults (connection errors, timeouts, 5xx, 408/429, bodies that end early or
 * stall) are retried with exponential backoff and jitter. A body that drops midway is
 * resumed with `Range` + `If-Range` when the server supports ranges; otherwise the
 * stream fails with a {@link NetworkError} whose `restartable` is true, because bytes
 * already handed downstream cannot be taken back.
 *
 * Proxies: Deno's `fetch` honours `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` by itself
 * (https://docs.deno.com/examples/fetch_http_proxy/), so nothing here handles them.
 *
 * A server that announces a `Content-Length` smaller than what it sends is cut to
 * that length by `fetch` and the stream ends "cleanly": only the downstream checksum
 * can catch that, and it does.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PyprimeError } from "../errors.ts";
import { isFile, removeIfExists } from "../fs.ts";
import { CacheWriter } from "./cache.ts";
import { HttpSource } from "./http.ts";
import { describeError as describe, redactUrl } from "./network_error.ts";

/** Options of {@link openUrl}. */
export interface DownloadOptions {
  /** Retries after the first attempt; default 3 (total attempts = retries + 1). */
  retries?: number;
  /** Base of the exponential backoff with jitter, in ms; default 500. */
  backoffMs?: number;
  /** No byte for this long counts as a dropped connection; default 30 000 ms. */
  idleTimeoutMs?: number;
  /** Aborts the download; the stream errors with the signal's reason. */
  signal?: AbortSignal;
  /** Refuse `http(s)` URLs (a cache hit and `file://` still work). */
  offline?: boolean;
  /** Called after each chunk handed downstream; `total` when the size is known. */
  onProgress?: (received: number, total?: number) => void;
  /** Called before each retry: `attempt` is the retry number (1 = first retry). */
  onRetry?: (attempt: number, reason: string, delayMs: number) => void;
  /** Folder of a download cache (e.g. a Docker cache mount); see {@link OpenedDownload}. */
  cacheDir?: string;
  /** Lowercase hex sha256 of the file; `commit()` refuses to cache other bytes. */
  expectedSha256?: string;
  /** The `fetch` to use; tests inject one. */
  fetch?: typeof fetch;
}

/** An opened byte source. */
export interface OpenedDownload {
  /** The bytes, pull-based: nothing is read ahead of the consumer beyond one chunk. */
  stream: ReadableStream<Uint8Array>;
  /** Size in bytes when known (file size or `Content-Length`). */
  size?: number;
  /** Where the bytes come from: the URL after redirects, or the cache file's `file://` URL. */
  url: string;
  /** Whether the bytes come from `cacheDir`. */
  fromCache: boolean;
  /**
   * Call once the downstream digest matched: moves the bytes teed into the cache into
   * place. Rejects if the stream was not read to the end, if the bytes differ from
   * `expectedSha256`, or if writing the cache failed (the install itself is fine then;
   * log it). A no-op without a cache or on a cache hit.
   */
  commit(): Promise<void>;
  /**
   * Call when the bytes were bad or the install failed: removes the partial cache file;
   * on a cache hit it evicts the cached file, so a corrupt entry is downloaded again next
   * time. A no-op without a cache.
   */
  discard(): Promise<void>;
}

/**
 * Opens `url` (`file:`, `http:` or `https:`) as a pull-based byte stream. For HTTP it
 * resolves once the response headers arrived (after retries); later faults are
 * handled inside the stream.
 *
 * @example Streaming into a hash, caching only verified bytes
 * ```ts
 * const download = await openUrl(url, { cacheDir, expectedSha256 });
 * const hash = createHash("sha256");
 * for await (const chunk of download.stream) hash.update(chunk);
 * if (hash.digest("hex") === expectedSha256) await download.commit();
 * else await download.discard();
 * ```
 */
export async function openUrl(url: string, options: DownloadOptions = {}): Promise<OpenedDownload> {
  const parsed = parseUrl(url);
  if (parsed.protocol === "file:") {
    return await openLocal(filePath(parsed), parsed.href, false, options);
  }

  const cacheName = cacheFileName(parsed);
  const cachePath = options.cacheDir === undefined || cacheName === undefined
    ? undefined
    : join(options.cacheDir, cacheName);
  if (cachePath !== undefined && await isFile(cachePath)) {
    return await openLocal(cachePath, pathToFileURL(cachePath).href, true, options);
  }
  if (options.offline) {
    throw new PyprimeError(`Cannot download ${redactUrl(url)}: offline mode`, {
      hint: "use a file:// mirror, or a --cache-dir that already holds the archive",
    });
  }

  const cache = cachePath === undefined
    ? undefined
    : await CacheWriter.create(cachePath, options.expectedSha256);
  const source = new HttpSource(parsed.href, options, cache);
  try {
    await source.connect();
  } catch (error) {
    await source.dispose();
    throw error;
  }
  return {
    stream: source.stream(),
    size: source.total,
    url: source.finalUrl,
    fromCache: false,
    commit: () => cache?.commit() ?? Promise.resolve(),
    discard: () => cache?.discard() ?? Promise.resolve(),
  };
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new PyprimeError(`Cannot download ${JSON.stringify(url)}: not a valid URL`, {
      cause,
      hint: "use an absolute https://, http:// or file:// URL",
    });
  }
  if (!["file:", "http:", "https:"].includes(parsed.protocol)) {
    throw new PyprimeError(`Cannot download ${redactUrl(url)}: unsupported URL scheme`, {
      hint: "use an https://, http:// or file:// URL",
    });
  }
  return parsed;
}

function filePath(url: URL): string {
  try {
    return fileURLToPath(url);
  } catch (cause) {
    throw new PyprimeError(`Cannot read ${url.href}: ${describe(cause)}`, {
      cause,
      hint: "use a file:///absolute/path URL",
    });
  }
}

/** The decoded last path segment, or undefined when it cannot be a file name. */
function cacheFileName(url: URL): string | undefined {
  const raw = url.pathname.split("/").at(-1) ?? "";
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (name === "" || name === "." || name === ".." || /[/\\\0]/.test(name)) return undefined;
  return name;
}

// ---------------------------------------------------------------------------------
// Local files: file:// URLs and cache hits.

const FILE_CHUNK = 256 * 1024;

async function openLocal(
  path: string,
  url: string,
  fromCache: boolean,
  options: DownloadOptions,
): Promise<OpenedDownload> {
  let file: Deno.FsFile;
  let size: number;
  try {
    file = await Deno.open(path, { read: true });
    size = (await file.stat()).size;
  } catch (cause) {
    throw new PyprimeError(`Cannot read ${path}: ${describe(cause)}`, {
      cause,
      hint: "check the path of the file:// mirror or archive",
    });
  }
  return {
    stream: fileStream(file, size, options),
    size,
    url,
    fromCache,
    commit: () => Promise.resolve(),
    discard: fromCache ? () => removeIfExists(path) : () => Promise.resolve(),
  };
}

function fileStream(
  file: Deno.FsFile,
  size: number,
  options: DownloadOptions,
): ReadableStream<Uint8Array> {
  let received = 0;
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        options.signal?.throwIfAborted();
        const buffer = new Uint8Array(FILE_CHUNK);
        const n = await file.read(buffer);
        if (n === null) {
          close();
          controller.close();
          return;
        }
        received += n;
        controller.enqueue(buffer.subarray(0, n));
        options.onProgress?.(received, size);
      } catch (error) {
        close();
        throw error;
      }
    },
    cancel: close,
  }, { highWaterMark: 1 });
}
