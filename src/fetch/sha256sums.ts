/**
 * `SHA256SUMS` beside an archive: python-build-standalone publishes one per release
 * (`<hex>  <name>` lines, as `sha256sum` prints them), and a mirror or a shared folder
 * that copies the release keeps it next to the archives.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PyprimeError } from "../errors.ts";
import { type DownloadOptions, openUrl } from "./download.ts";
import { describeError, NetworkError, redactUrl } from "./network_error.ts";

/** The file name looked for beside an archive. */
export const SUMS_NAME = "SHA256SUMS";

/** A PBS release's SHA256SUMS is ~200 KB; anything far larger is not one. */
const MAX_SUMS_BYTES = 8 * 1024 * 1024;

/** What the `SHA256SUMS` beside an archive says about it. */
export interface SumsLookup {
  /** Where the file was looked for (a path, or a URL without credentials). */
  where: string;
  /** The listed digest, lowercase hex, when the file lists the archive. */
  sha256?: string;
  /** Why there is no digest: no such file, the name is not listed, offline, … */
  missing?: string;
}

/**
 * Parses `sha256sum` output: `<hex>  <name>` or `<hex> *<name>` (binary mode) per
 * line; other lines are skipped. A name listed twice with different digests throws.
 *
 * @example
 * ```ts
 * parseSha256Sums(`${"a".repeat(64)}  cpython.tar.gz\n`).get("cpython.tar.gz"); // "aaaa…"
 * ```
 */
export function parseSha256Sums(text: string, where = SUMS_NAME): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!match) continue;
    const [, hex, name] = match;
    const known = sums.get(name);
    if (known !== undefined && known !== hex.toLowerCase()) {
      throw new PyprimeError(`Cannot use ${where}: it lists ${name} twice with different digests`, {
        hint: "fix or replace the SHA256SUMS file",
      });
    }
    sums.set(name, hex.toLowerCase());
  }
  return sums;
}

/**
 * Looks for `SHA256SUMS` beside `location` (a file path, or an `http(s)://`/`file://` URL)
 * and returns the digest it lists for `name`. A missing file, or one that does not list
 * `name`, is not an error (`missing` says why); a listed digest is binding.
 *
 * @example
 * ```ts
 * const sums = await sha256SumsBeside("https://mirror/pbs/20251014/cpython-….tar.gz", name, {});
 * sums.sha256; // the listed digest, or undefined
 * ```
 */
export async function sha256SumsBeside(
  location: string,
  name: string,
  options: DownloadOptions,
): Promise<SumsLookup> {
  const isUrl = /^https?:\/\//i.test(location);
  const path = /^file:\/\//i.test(location) ? fileURLToPath(location) : location;
  const where = isUrl ? new URL(SUMS_NAME, location).href : join(dirname(path), SUMS_NAME);
  const { sums, ...file } = await readSha256Sums(where, options);
  if (sums === undefined) return file;
  const sha256 = sums.get(name);
  return sha256 === undefined
    ? { where: file.where, missing: `it does not list ${name}` }
    : { where: file.where, sha256 };
}

/** A `SHA256SUMS` file read whole, or why there is none. */
export interface SumsFile {
  /** Where it was read (a path, or a URL without credentials). */
  where: string;
  /** Its digests by file name, when it could be read. */
  sums?: Map<string, string>;
  /** Why there is none: no such file, offline, a status… */
  missing?: string;
}

/**
 * Reads the `SHA256SUMS` at `where` (a path, or an `http(s)://`/`file://` URL): a
 * missing file, a status or `offline` for a URL is `missing`; a server that cannot be
 * reached or trusted, or a malformed file, throws.
 *
 * @example
 * ```ts
 * const { sums } = await readSha256Sums("file:///srv/packs/SHA256SUMS", {});
 * ```
 */
export async function readSha256Sums(where: string, options: DownloadOptions): Promise<SumsFile> {
  const isUrl = /^https?:\/\//i.test(where);
  const path = /^file:\/\//i.test(where) ? fileURLToPath(where) : where;
  const shown = redactUrl(isUrl ? where : path);
  if (isUrl && options.offline) return { where: shown, missing: "offline mode" };
  let text: string | undefined;
  try {
    text = isUrl ? await readUrl(where, options) : await readFile(path);
  } catch (error) {
    // A status (403, 500 after retries) means "no SHA256SUMS to be had"; a server that
    // cannot be reached or trusted serves the archive no better: that error stands.
    if (!(error instanceof NetworkError) || error.status === undefined) throw error;
    return { where: shown, missing: describeError(error) };
  }
  if (text === undefined) return { where: shown, missing: "no such file" };
  return { where: shown, sums: parseSha256Sums(text, shown) };
}

function tooLarge(where: string): PyprimeError {
  return new PyprimeError(`Cannot use ${redactUrl(where)}: over ${MAX_SUMS_BYTES} bytes`, {
    hint: "a SHA256SUMS file lists digests only; remove or replace this one",
  });
}

async function readFile(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return undefined;
    if (info.size > MAX_SUMS_BYTES) throw tooLarge(path);
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    if (error instanceof PyprimeError) throw error;
    throw new PyprimeError(`Cannot read ${path}: ${describeError(error)}`, {
      cause: error,
      hint: "make the SHA256SUMS beside the archive readable, or remove it",
    });
  }
}

async function readUrl(url: string, options: DownloadOptions): Promise<string | undefined> {
  let opened;
  try {
    opened = await openUrl(url, {
      ...options,
      cacheDir: undefined,
      expectedSha256: undefined,
      onProgress: undefined,
    });
  } catch (error) {
    if (error instanceof NetworkError && [404, 410].includes(error.status ?? 0)) return undefined;
    throw error;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of opened.stream) {
    size += chunk.byteLength;
    if (size > MAX_SUMS_BYTES) throw tooLarge(url);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
