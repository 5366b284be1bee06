/**
 * One logical HTTP download over possibly several requests: retries with backoff and
 * jitter, `Range` + `If-Range` resume of a body that dropped, and an idle timeout.
 *
 * @module
 */
import type { CacheWriter } from "./cache.ts";
import type { DownloadOptions } from "./download.ts";
import { PyprimeError } from "../errors.ts";
import { CA_HINT, fetchFollowing } from "./client.ts";
import { DEFAULT_HINT, describeError as describe, NetworkError } from "./network_error.ts";

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
export class HttpSource {
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
    let url: string;
    const timer = setTimeout(() => abort.abort(new IdleTimeout(this.#idleMs)), this.#idleMs);
    try {
      ({ response, url } = await fetchFollowing(
        this.#url,
        { headers, signal: abort.signal },
        this.#fetch,
      ));
    } catch (error) {
      this.#throwIfUserAborted();
      // Our own refusals (a bad SSL_CERT_FILE, a redirect to ftp:) are not network faults.
      if (error instanceof PyprimeError) throw error;
      const why = describe(error);
      // A certificate the roots do not vouch for fails the same way every time.
      const tls = /invalid peer certificate: (.*)$/.exec(why);
      if (tls) {
        const reason = tls[1] === "UnknownIssuer"
          ? "certificate not trusted by this machine"
          : "certificate rejected";
        throw new NetworkError(this.#url, `${reason} (invalid peer certificate: ${tls[1]})`, {
          cause: error,
          hint: CA_HINT,
        });
      }
      return new Retriable(why, error);
    } finally {
      clearTimeout(timer);
    }

    const status = `${response.status} ${response.statusText}`.trim();
    if (response.status >= 500 || RETRIABLE_4XX.has(response.status)) {
      await discardBody(response);
      return new Retriable(status, new Error(status), retryAfterMs(response));
    }
    await this.#accept(response, from, status);
    this.finalUrl = url;
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
        : response.status === 401 || response.status === 403
        ? "the server wants credentials: put them in the mirror URL (https://user:token@host/…) or in ~/.netrc (or $NETRC)"
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
        `${failure.reason} (gave up after ${this.#attempts} ${
          this.#attempts === 1 ? "attempt" : "attempts"
        })`,
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
