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
import { createHash, type Hash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ChecksumMismatchError, PyprimeError, type PyprimeErrorOptions } from "../errors.ts";

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

/** Options of a {@link NetworkError}. */
export interface NetworkErrorOptions extends PyprimeErrorOptions {
  /** The HTTP status that caused it, if any. */
  status?: number;
  /** True when starting the whole download over (into a fresh staging folder) may work. */
  restartable?: boolean;
}

const DEFAULT_HINT =
  "check the network or the proxy settings (HTTPS_PROXY, NO_PROXY), or use a file:// mirror or --cache-dir";

/**
 * A download that failed: a 4xx status, or a network failure after all retries.
 * The message names the URL (credentials removed) and the cause.
 *
 * @example
 * ```ts
 * try {
 *   await consume((await openUrl(url)).stream);
 * } catch (error) {
 *   if (error instanceof NetworkError && error.restartable) {
 *     // start over into a fresh staging folder
 *   }
 * }
 * ```
 */
export class NetworkError extends PyprimeError {
  /** The URL that failed, without credentials. */
  readonly url: string;
  /** The HTTP status, when the failure was a status. */
  readonly status?: number;
  /**
   * True when the connection dropped after bytes went downstream and the server cannot
   * resume: the caller should start over from scratch.
   */
  readonly restartable: boolean;

  /** Creates `Cannot download <url>: <reason>`. */
  constructor(url: string, reason: string, options: NetworkErrorOptions = {}) {
    const shown = redactUrl(url);
    super(`Cannot download ${shown}: ${reason}`, { hint: DEFAULT_HINT, ...options });
    this.name = "NetworkError";
    this.url = shown;
    this.status = options.status;
    this.restartable = options.restartable ?? false;
  }
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

/** Replaces the user info of `url` (mirror credentials) so messages never leak it. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === "" && parsed.password === "") return url;
    parsed.username = "***";
    parsed.password = "";
    return parsed.href;
  } catch {
    return url;
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

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
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

// ---------------------------------------------------------------------------------
// HTTP with retries and resume.

const MAX_DELAY_MS = 30_000;
const RETRIABLE_4XX = new Set([408, 429]);

/** A failed attempt that may be retried. */
class Retriable {
  constructor(
    readonly reason: string,
    readonly cause: unknown,
    readonly retryAfterMs?: number,
  ) {}
}

class IdleTimeout extends Error {
  constructor(ms: number) {
    super(`no data for ${ms} ms`);
    this.name = "IdleTimeout";
  }
}

/** One logical download over possibly several HTTP requests. */
class HttpSource {
  total?: number;
  finalUrl: string;
  #url: string;
  #fetch: typeof fetch;
  #retries: number;
  #backoffMs: number;
  #idleMs: number;
  #options: DownloadOptions;
  #cache?: CacheWriter;
  #attempts = 0;
  #received = 0;
  #acceptRanges = false;
  #validator?: string;
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #abort?: AbortController;
  #onUserAbort = () => this.#abort?.abort(this.#options.signal?.reason);

  constructor(url: string, options: DownloadOptions, cache: CacheWriter | undefined) {
    this.#url = url;
    this.finalUrl = url;
    this.#options = options;
    this.#cache = cache;
    this.#fetch = options.fetch ?? fetch;
    this.#retries = nonNegative(options.retries, 3);
    this.#backoffMs = nonNegative(options.backoffMs, 500);
    this.#idleMs = nonNegative(options.idleTimeoutMs, 30_000);
    options.signal?.addEventListener("abort", this.#onUserAbort);
  }

  /** Makes the first request, retrying until a 200 with a body arrives. */
  async connect(): Promise<void> {
    await this.#open(0);
  }

  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          await this.#pull(controller);
        } catch (error) {
          await this.dispose();
          throw error;
        }
      },
      cancel: () => this.dispose(),
    }, { highWaterMark: 1 });
  }

  /** Stops everything and removes a partial cache file. Safe to call twice. */
  async dispose(): Promise<void> {
    this.#release();
    await this.#cache?.abandon();
  }

  #release(): void {
    this.#options.signal?.removeEventListener("abort", this.#onUserAbort);
    this.#dropConnection();
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      if (this.#reader === undefined) await this.#open(this.#received);
      const result = await this.#readOrFailure();
      if (result instanceof Retriable) {
        await this.#afterDrop(result);
        continue;
      }
      if (!result.done) {
        if (result.value.byteLength === 0) continue;
        await this.#cache?.write(result.value);
        this.#received += result.value.byteLength;
        controller.enqueue(result.value);
        this.#options.onProgress?.(this.#received, this.total);
        return;
      }
      if (this.total !== undefined && this.#received < this.total) {
        await this.#afterDrop(
          new Retriable(`connection closed after ${this.#progressText()} bytes`, undefined),
        );
        continue;
      }
      this.#cache?.finish();
      this.#release();
      controller.close();
      return;
    }
  }

  /** The next chunk, or why the connection failed (a user abort is thrown). */
  async #readOrFailure(): Promise<ReadableStreamReadResult<Uint8Array> | Retriable> {
    try {
      return await this.#read();
    } catch (error) {
      this.#throwIfUserAborted();
      const reason = `connection lost after ${this.#progressText()} bytes (${describe(error)})`;
      return new Retriable(reason, error);
    }
  }

  /** A body dropped midway: waits to resume, or throws when resuming is impossible. */
  async #afterDrop(failure: Retriable): Promise<void> {
    this.#dropConnection();
    if (this.#received > 0 && !this.#acceptRanges) {
      throw new NetworkError(this.#url, `${failure.reason}; the server cannot resume`, {
        cause: failure.cause,
        restartable: true,
      });
    }
    await this.#backoff(failure);
  }

  /** Requests the body from byte `from`, retrying per the budget; sets the reader. */
  async #open(from: number): Promise<void> {
    for (;;) {
      const outcome = await this.#request(from);
      if (outcome === undefined) return;
      await this.#backoff(outcome);
    }
  }

  /** One request: undefined on success, a Retriable to retry; throws fatal errors. */
  async #request(from: number): Promise<Retriable | undefined> {
    this.#attempts++;
    const abort = new AbortController();
    this.#abort = abort;
    this.#throwIfUserAborted();
    const headers = new Headers({ "accept-encoding": "identity" });
    if (from > 0) {
      headers.set("range", `bytes=${from}-`);
      if (this.#validator !== undefined) headers.set("if-range", this.#validator);
    }
    let response: Response;
    const timer = setTimeout(() => abort.abort(new IdleTimeout(this.#idleMs)), this.#idleMs);
    try {
      response = await this.#fetch(this.#url, { headers, signal: abort.signal });
    } catch (error) {
      this.#throwIfUserAborted();
      return new Retriable(describe(error), error);
    } finally {
      clearTimeout(timer);
    }

    const status = `${response.status} ${response.statusText}`.trim();
    if (response.status >= 500 || RETRIABLE_4XX.has(response.status)) {
      await discardBody(response);
      return new Retriable(status, new Error(status), retryAfterMs(response));
    }
    await this.#accept(response, from, status);
    this.finalUrl = response.url || this.#url;
    this.#reader = response.body?.getReader() ?? new Response(new Uint8Array()).body!.getReader();
    return undefined;
  }

  /** Throws unless `response` is a body to read from byte `from`; records its metadata. */
  async #accept(response: Response, from: number, status: string): Promise<void> {
    const resuming = from > 0 && (response.status < 400 || response.status === 416);
    const problem = resuming
      ? this.#checkResumed(response, from, status)
      : response.status >= 400
      ? status
      : this.#acceptFirst(response, status);
    if (problem === undefined) return;
    await discardBody(response);
    if (resuming) {
      // Bytes already went downstream and cannot be spliced: only a fresh start helps.
      throw new NetworkError(this.#url, `${problem}, after ${this.#progressText()} bytes`, {
        status: response.status,
        restartable: true,
      });
    }
    throw new NetworkError(this.#url, problem, {
      status: response.status,
      hint: response.status === 404
        ? "check the version, the platform and the mirror URL"
        : DEFAULT_HINT,
    });
  }

  /** Records size, range support and validator of a 200; undefined or the problem. */
  #acceptFirst(response: Response, status: string): string | undefined {
    if (response.status !== 200) return `unexpected ${status}`;
    const encoding = response.headers.get("content-encoding");
    // A content-encoded body is decoded by fetch: its length and ranges do not count bytes.
    const identity = encoding === null || encoding.toLowerCase() === "identity";
    const length = Number(response.headers.get("content-length") ?? NaN);
    this.total = identity && Number.isSafeInteger(length) && length >= 0 ? length : undefined;
    const ranges = (response.headers.get("accept-ranges") ?? "").toLowerCase().split(/\s*,\s*/);
    this.#acceptRanges = identity && ranges.includes("bytes");
    this.#validator = strongValidator(response.headers);
    return undefined;
  }

  /** Checks that a resumed response continues exactly at `from`; undefined or the problem. */
  #checkResumed(response: Response, from: number, status: string): string | undefined {
    if (response.status !== 206) {
      return `resuming got ${status} instead of 206 Partial Content (the file changed or the server ignores ranges)`;
    }
    const header = response.headers.get("content-range");
    const range = parseContentRange(header);
    if (range === undefined || range.start !== from) {
      return `resuming at byte ${from} got the range ${JSON.stringify(header)}`;
    }
    if (this.total !== undefined && range.total !== undefined && range.total !== this.total) {
      return `the file changed size to ${range.total} bytes while downloading`;
    }
    return undefined;
  }

  async #read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    const abort = this.#abort!;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Deno errors a fetch body on abort only while its Response is alive, so the
    // timeout must not rely on the abort reaching a pending read.
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new IdleTimeout(this.#idleMs);
        abort.abort(error);
        reject(error);
      }, this.#idleMs);
    });
    try {
      return await Promise.race([this.#reader!.read(), idle]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits before the next attempt, or throws the final NetworkError. */
  async #backoff(failure: Retriable): Promise<void> {
    if (this.#attempts > this.#retries) {
      throw new NetworkError(
        this.#url,
        `${failure.reason} (gave up after ${this.#attempts} attempts)`,
        { cause: failure.cause },
      );
    }
    const exponential = Math.min(MAX_DELAY_MS, this.#backoffMs * 2 ** (this.#attempts - 1));
    // Jitter in [50%, 100%] so many clients hit by the same outage do not retry in step.
    const jittered = Math.round(exponential * (0.5 + Math.random() * 0.5));
    const delay = Math.max(jittered, Math.min(failure.retryAfterMs ?? 0, MAX_DELAY_MS));
    this.#options.onRetry?.(this.#attempts, failure.reason, delay);
    await sleep(delay, this.#options.signal);
  }

  #throwIfUserAborted(): void {
    this.#options.signal?.throwIfAborted();
  }

  #dropConnection(): void {
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.cancel().catch(() => {});
    this.#abort?.abort();
  }

  #progressText(): string {
    return this.total === undefined ? `${this.#received}` : `${this.#received} of ${this.total}`;
  }
}

function nonNegative(value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`download option must be a non-negative number, got ${value}`);
  }
  return value;
}

/** A strong ETag, else Last-Modified: weak ETags are not allowed in If-Range. */
function strongValidator(headers: Headers): string | undefined {
  const etag = headers.get("etag");
  if (etag !== null && !etag.startsWith("W/")) return etag;
  return headers.get("last-modified") ?? undefined;
}

function parseContentRange(
  header: string | null,
): { start: number; total?: number } | undefined {
  const match = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(header?.trim() ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[3] === "*" ? undefined : Number(match[3]) };
}

function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {});
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof Deno.errors.NotFound) return "not found";
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  // Deno's fetch wraps the useful text: "fetch failed" + cause "tcp connect error: …".
  return cause !== undefined && cause !== error.message
    ? `${error.message}: ${cause}`
    : error.message;
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

// ---------------------------------------------------------------------------------
// The cache tee.

/** Writes the streamed bytes to `.<name>.<random>.part` next to the final cache file. */
class CacheWriter {
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
