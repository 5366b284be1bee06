/**
 * The error of a failed download and the text helpers its messages need: a URL with
 * its credentials removed, and a fetch failure described with its cause.
 *
 * @module
 */
import { PyprimeError, type PyprimeErrorOptions } from "../errors.ts";

/** Options of a {@link NetworkError}. */
export interface NetworkErrorOptions extends PyprimeErrorOptions {
  /** The HTTP status that caused it, if any. */
  status?: number;
  /** True when starting the whole download over (into a fresh staging folder) may work. */
  restartable?: boolean;
}

/** The hint of a network failure: what to check, and the offline alternatives. */
export const DEFAULT_HINT =
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
 * Replaces the user info of `url` (mirror credentials) so messages never leak it.
 *
 * @example
 * ```ts
 * redactUrl("https://u:t@host/x"); // "https://***@host/x"
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === "" && parsed.password === "") return url;
    parsed.username = "***";
    parsed.password = "";
    return parsed.href;
  } catch {
    // Not a URL the parser takes: still never print what looks like user info.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1***@");
  }
}

/**
 * A failure in a few words: Deno's fetch wraps the useful text ("fetch failed" with
 * the cause "tcp connect error: …"), and a missing file is "not found".
 *
 * @example
 * ```ts
 * describeError(new Deno.errors.NotFound("x")); // "not found"
 * ```
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof Deno.errors.NotFound) return "not found";
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  // Deno's fetch wraps the useful text: "fetch failed" + cause "tcp connect error: …",
  // or one message "error sending request for url (URL): client error (Connect): tcp …".
  // The URL is named once, by the caller; only the innermost reason is kept.
  const text = cause !== undefined && cause !== error.message
    ? `${error.message}: ${cause}`
    : error.message;
  const inner = text
    .replace(/^fetch failed: /i, "")
    .replace(/error sending request for url \([^)]*\): /i, "")
    .replace(/client error \([A-Za-z]+\): /gi, "");
  return inner || text;
}
