/**
 * The catalog follows PBS releases without a new pyprime: PBS's versions feed
 * (newline-delimited JSON, one release per line, `{"version": "3.14.10+20261120",
 * "artifacts": [{"platform", "variant", "url", "archive_format", "sha256"}, …]}`) is
 * fetched when the cached copy is older than {@link FEED_TTL_MS} (or `--refresh`), kept
 * in the cache dir, and merged over the embedded catalog: a key in both takes the
 * feed's entry. A feed that cannot be fetched or does not validate as a whole is never
 * used and never fails a command: the embedded (or last cached) catalog is, with one
 * note on stderr.
 *
 * @module
 */
import { join } from "node:path";
import { envValue } from "../env.ts";
import {
  type Catalog,
  createDownload,
  type Download,
  loadCatalog,
  sortDownloads,
} from "./catalog.ts";
import { normalizeArch, normalizeOs } from "./platform.ts";
import { parseVersion } from "./version.ts";

/** Astral's copy of the feed, the one uv's metadata script reads. */
export const DEFAULT_VERSIONS_URL =
  "https://releases.astral.sh/github/versions/main/v1/python-build-standalone.ndjson";
/** A cached feed younger than this is used without asking the server. */
export const FEED_TTL_MS = 24 * 3600 * 1000;
/** Feeds larger than this are refused (the real one is a few MiB). */
export const FEED_MAX_BYTES = 64 * 1024 * 1024;
const FEED_TIMEOUT_MS = 10_000;
/** After a failed fetch, the next attempt waits this long (unless `--refresh`). */
export const FEED_RETRY_MS = 3600 * 1000;
const FILE = "versions.ndjson";

/** How {@link catalogWithFeed} was asked to behave. */
export interface FeedOptions {
  /** `--catalog`: that catalog alone, no feed. */
  catalog?: string;
  /** `--offline`: no request; a cached feed is still merged. */
  offline?: boolean;
  /** `--refresh`: fetch even when the cached feed is fresh. */
  refresh?: boolean;
  /** Folder of the cached feed; `$XDG_CACHE_HOME/pyprime`, else `~/.cache/pyprime`. */
  cacheDir?: string;
  /** Receives the one note when the feed is not used as asked. */
  note?: (message: string) => void;
}

/** Whether a versions feed is cached (in `feedCacheDir(dir)`), to be merged into the catalog. */
export async function cachedFeedExists(dir?: string): Promise<boolean> {
  return await Deno.lstat(join(feedCacheDir(dir), FILE)).then(() => true, () => false);
}

/** The folder the feed is cached in. */
export function feedCacheDir(dir?: string): string {
  if (dir) return dir;
  const xdg = envValue("XDG_CACHE_HOME");
  return xdg ? join(xdg, "pyprime") : join(envValue("HOME") ?? "/tmp", ".cache", "pyprime");
}

const VERSION_RE = /^(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)\+(\d{8})$/;
const FLAVOURS = ["install_only_stripped", "install_only"] as const;

function safeUrl(url: unknown): url is string {
  if (typeof url !== "string" || url.length > 2048 || /[\s\\]/.test(url)) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (parsed.protocol === "https:" || parsed.protocol === "http:") &&
    !url.split(/[?#]/)[0].split("/").some((s) => s === ".." || s === "." || /%2e%2e/i.test(s)) &&
    /\/cpython-[^/]+\.tar\.(gz|zst)$/.test(parsed.pathname);
}

/**
 * Parses and validates feed text. Every line must be a release object with the right
 * types; every artifact a safe `http(s)` URL to a `cpython-*.tar.{gz,zst}` with a hex
 * sha256. Throws `Error` naming the first bad line: one bad line rejects the feed.
 *
 * @example
 * ```ts
 * parseFeed('{"version":"3.14.10+20261120","artifacts":[]}\n').length; // 0
 * ```
 */
export function parseFeed(text: string): Download[] {
  const out: Download[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [n, line] of lines.entries()) {
    const bad = (why: string) => new Error(`line ${n + 1}: ${why}`);
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      throw bad("not JSON");
    }
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) throw bad("not an object");
    const { version, artifacts } = rec as Record<string, unknown>;
    const m = typeof version === "string" ? VERSION_RE.exec(version) : null;
    const parsed = m ? parseVersion(m[1]) : undefined;
    if (!m || !parsed) throw bad(`bad version ${JSON.stringify(version)}`);
    if (!Array.isArray(artifacts)) throw bad("artifacts is not a list");
    for (const a of artifacts) {
      if (typeof a !== "object" || a === null) throw bad("an artifact is not an object");
      const { platform, variant, url, archive_format: format, sha256 } = a as Record<
        string,
        unknown
      >;
      if (typeof platform !== "string" || typeof variant !== "string") {
        throw bad("an artifact's platform or variant is not a string");
      }
      if (!safeUrl(url)) throw bad(`unsafe or unknown url ${JSON.stringify(url)}`.slice(0, 200));
      if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) {
        throw bad(`bad sha256 ${JSON.stringify(sha256)}`.slice(0, 200));
      }
      if (format !== "tar.gz" && format !== "tar.zst") throw bad("bad archive_format");
      const parts = variant.split("+");
      const flavour = parts.pop()!;
      if (!(FLAVOURS as readonly string[]).includes(flavour)) continue;
      const free = parts.includes("freethreaded");
      const debug = parts.includes("debug");
      const [archName, vendor, system, libcName] = platform.split("-");
      const os = normalizeOs(vendor === "apple" ? "darwin" : system ?? "");
      const arch = normalizeArch(archName ?? "");
      if (os === undefined || arch === undefined) continue;
      out.push(createDownload({
        version: parsed,
        os,
        ...arch,
        libc: os === "linux" ? libcName ?? "gnu" : "none",
        variant: free && debug
          ? "freethreaded+debug"
          : free
          ? "freethreaded"
          : debug
          ? "debug"
          : null,
        build: m[2],
        url,
        sha256,
        flavour: flavour as typeof FLAVOURS[number],
      }));
    }
  }
  return out;
}

/** `base` with `extra` added; a key in both takes `extra`'s best (stripped) entry. */
export function mergeDownloads(base: Download[], extra: Download[]): Download[] {
  const byKey = new Map<string, Download>();
  for (const d of extra) {
    const old = byKey.get(d.key);
    if (
      !old || (old.flavour !== "install_only_stripped" && d.flavour === "install_only_stripped")
    ) {
      byKey.set(d.key, d);
    }
  }
  return sortDownloads([...base.filter((d) => !byKey.has(d.key)), ...byKey.values()]);
}

async function fetchFeed(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FEED_TIMEOUT_MS) });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const length = Number(response.headers.get("content-length") ?? 0);
  if (length > FEED_MAX_BYTES) {
    await response.body?.cancel();
    throw new Error(`larger than ${FEED_MAX_BYTES} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body!) {
    size += chunk.length;
    if (size > FEED_MAX_BYTES) throw new Error(`larger than ${FEED_MAX_BYTES} bytes`);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, (at += c.length) - c.length);
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path).catch(async (err) => {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  });
}

function hoursOld(mtime: Date | null): string {
  const h = mtime ? (Date.now() - mtime.getTime()) / 3600e3 : 0;
  return h < 1 ? "less than 1 h old" : `${Math.floor(h)} h old`;
}

/**
 * The catalog commands use: `--catalog` alone when given; else the embedded catalog
 * with the versions feed (`PYPRIME_VERSIONS_URL`, else {@link DEFAULT_VERSIONS_URL})
 * merged over it. `source` says what was used, e.g. `embedded + feed URL (2 h old)`.
 *
 * @example
 * ```ts
 * const catalog = await catalogWithFeed({ note: (m) => out.warn(m) });
 * ```
 */
export async function catalogWithFeed(options: FeedOptions = {}): Promise<Catalog> {
  if (options.catalog) return await loadCatalog(options.catalog);
  const embedded = await loadCatalog();
  const url = envValue("PYPRIME_VERSIONS_URL") ?? DEFAULT_VERSIONS_URL;
  const dir = feedCacheDir(options.cacheDir);
  const path = join(dir, FILE);
  const info = await Deno.stat(path).catch(() => undefined);
  const readCached = async (): Promise<Download[] | undefined> => {
    try {
      return parseFeed(await Deno.readTextFile(path));
    } catch {
      return undefined;
    }
  };
  const fresh = info?.mtime && Date.now() - info.mtime.getTime() < FEED_TTL_MS;
  let downloads: Download[] | undefined;
  let age = hoursOld(info?.mtime ?? null);
  if (options.offline || (fresh && !options.refresh)) {
    downloads = info ? await readCached() : undefined;
    if (options.offline) {
      const what = downloads ? `the feed cached in ${path} (${age})` : "the embedded catalog";
      options.note?.(`offline: not refreshing the versions feed; using ${what}`);
    }
  }
  const failedAt = (await Deno.stat(`${path}.failed`).catch(() => undefined))?.mtime;
  const backOff = !options.refresh && failedAt && Date.now() - failedAt.getTime() < FEED_RETRY_MS;
  if (downloads === undefined && !options.offline && backOff) {
    downloads = info ? await readCached() : undefined;
    const what = downloads ? `the feed cached in ${path} (${age})` : "the embedded catalog";
    options.note?.(
      `The versions feed ${url} failed less than 1 h ago; using ${what} (--refresh retries now)`,
    );
  } else if (downloads === undefined && !options.offline) {
    try {
      const text = await fetchFeed(url);
      downloads = parseFeed(text);
      age = "just fetched";
      await Deno.mkdir(dir, { recursive: true });
      await writeAtomic(path, text).catch(() => {});
      await Deno.remove(`${path}.failed`).catch(() => {});
    } catch (err) {
      await Deno.mkdir(dir, { recursive: true }).catch(() => {});
      await Deno.writeTextFile(`${path}.failed`, `${(err as Error).message}\n`).catch(() => {});
      downloads = info ? await readCached() : undefined;
      const what = downloads ? `the feed cached in ${path} (${age})` : "the embedded catalog";
      options.note?.(
        `Cannot use the versions feed ${url}: ${(err as Error).message}; using ${what}`,
      );
    }
  }
  if (!downloads) return embedded;
  const merged = mergeDownloads(embedded.downloads, downloads);
  const newestBuild = merged.reduce((best, { build }) => (build > best ? build : best), "");
  return { source: `embedded + feed ${url} (${age})`, downloads: merged, newestBuild };
}
