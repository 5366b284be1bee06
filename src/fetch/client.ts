/**
 * How pyprime talks HTTP(S): the certificate authorities it trusts, the credentials it
 * sends, and redirects followed by hand so that credentials never reach another host.
 *
 * Trust: Deno's own roots (Mozilla's, bundled; the system store only when
 * `DENO_TLS_CA_STORE=system`), plus the certificates of `SSL_CERT_FILE` (a PEM bundle)
 * and of every PEM file in the folders of `SSL_CERT_DIR` (`:`-separated), the variables
 * OpenSSL, curl, pip and uv read. They are added with `Deno.createHttpClient({ caCerts })`.
 *
 * Credentials: a URL's own `user:token@` (for its origin only), else the `~/.netrc`
 * (or `$NETRC`) entry of the host, sent as HTTP Basic auth.
 *
 * Proxies: Deno's `fetch` honours `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` itself,
 * also through a client made here.
 *
 * @module
 */
import { join } from "node:path";
import { envValue } from "../env.ts";
import { PyprimeError } from "../errors.ts";
import { basicAuth, credentialsFor } from "./netrc.ts";

/** A CA bundle is a few hundred KB; refuse files far larger. */
const MAX_CA_FILE = 4 * 1024 * 1024;
/** At most this many files are read from `SSL_CERT_DIR`. */
const MAX_CA_DIR_FILES = 1000;
const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The hint of a certificate the TLS roots do not vouch for. */
export const CA_HINT =
  "if the server uses an internal certificate authority, set SSL_CERT_FILE=/path/to/ca.pem (or SSL_CERT_DIR) to its certificate";

function caError(name: string, value: string, why: string, cause?: unknown): PyprimeError {
  return new PyprimeError(`Cannot use ${name}=${value}: ${why}`, {
    cause,
    hint: `point ${name} at PEM certificates of the certificate authorities to trust, or unset it`,
  });
}

function readPem(name: string, value: string, path: string, required: boolean): string[] {
  let text: string;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) {
      if (required) throw caError(name, value, `${path} is not a file`);
      return [];
    }
    if (info.size > MAX_CA_FILE) throw caError(name, value, `${path} is over ${MAX_CA_FILE} bytes`);
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof PyprimeError) throw error;
    if (!required) return [];
    throw caError(name, value, (error as Error).message, error);
  }
  const certs = text.match(PEM) ?? [];
  if (required && certs.length === 0) throw caError(name, value, "it holds no PEM certificate");
  return certs;
}

/** The extra CA certificates of `SSL_CERT_FILE` and `SSL_CERT_DIR`, as PEM blocks. */
export function extraCaCerts(): string[] {
  const certs: string[] = [];
  const file = envValue("SSL_CERT_FILE");
  if (file !== undefined) certs.push(...readPem("SSL_CERT_FILE", file, file, true));
  const dirs = envValue("SSL_CERT_DIR");
  for (const dir of dirs?.split(":").filter(Boolean) ?? []) {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)].slice(0, MAX_CA_DIR_FILES);
    } catch (error) {
      throw caError("SSL_CERT_DIR", dirs!, `cannot read ${dir}: ${(error as Error).message}`);
    }
    for (const entry of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (entry.isFile || entry.isSymlink) {
        certs.push(...readPem("SSL_CERT_DIR", dirs!, join(dir, entry.name), false));
      }
    }
  }
  return certs;
}

let client: Deno.HttpClient | undefined | null = null;

/** The HTTP client with the extra CA certificates; undefined when there are none. */
export function httpClient(): Deno.HttpClient | undefined {
  if (client === null) {
    const caCerts = extraCaCerts();
    client = caCerts.length > 0 ? Deno.createHttpClient({ caCerts }) : undefined;
  }
  return client;
}

/** Splits `user:password@` off a URL: the URL to request and the Basic auth to send there. */
export function splitCredentials(url: string): { url: string; auth?: string } {
  const parsed = new URL(url);
  if (parsed.username === "" && parsed.password === "") return { url };
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.href, auth: basicAuth(user, password) };
}

/** A response and the URL it came from after redirects. */
export interface Fetched {
  /** The final response (never a redirect, unless there were too many). */
  response: Response;
  /** Its URL, without credentials. */
  url: string;
}

/**
 * GETs `url` (which may carry `user:token@`), following redirects by hand: the URL's
 * credentials go to its own origin only, `~/.netrc` credentials to their host only.
 *
 * @example
 * ```ts
 * const { response } = await fetchFollowing("https://user:token@mirror/x.tar.gz", {});
 * ```
 */
export async function fetchFollowing(
  url: string,
  init: { headers?: Headers; signal?: AbortSignal },
  fetchImpl: typeof fetch = fetch,
): Promise<Fetched> {
  const first = splitCredentials(url);
  const origin = new URL(first.url).origin;
  let current = new URL(first.url);
  for (let hop = 0;; hop++) {
    const headers = new Headers(init.headers);
    const auth = current.origin === origin && first.auth
      ? first.auth
      : await credentialsFor(current.hostname);
    if (auth !== undefined) headers.set("authorization", auth);
    const http = httpClient();
    const response = await fetchImpl(current.href, {
      headers,
      signal: init.signal,
      redirect: "manual",
      ...(http ? { client: http } : {}),
    });
    const location = response.headers.get("location");
    if (!REDIRECTS.has(response.status) || location === null || hop >= MAX_REDIRECTS) {
      return { response, url: current.href };
    }
    await response.body?.cancel().catch(() => {});
    const next = new URL(location, current);
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      throw new PyprimeError(`Cannot follow a redirect of ${current.href} to ${next.protocol}`, {
        hint: "the mirror must redirect to an http(s) URL",
      });
    }
    // Credentials in a Location header are not the user's: never send them.
    next.username = "";
    next.password = "";
    current = next;
  }
}
