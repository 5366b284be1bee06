/**
 * The catalog of python-build-standalone CPython downloads: the copy embedded in
 * the binary (`src/resolve/catalog.json`, made by `scripts/update_catalog.ts`) or a file
 * or URL in pyprime's compact format or uv's `download-metadata.json` format. Matching a
 * request against it is in `match.ts`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import embedded from "./catalog.json" with { type: "json" };
import { PyprimeError, type PyprimeErrorOptions } from "../errors.ts";
import { fetchFollowing } from "../fetch/client.ts";
import { describeError, redactUrl } from "../fetch/network_error.ts";
import { formatArch, normalizeArch, normalizeOs } from "./platform.ts";
import { installKey, type Variant } from "./request.ts";
import { compareVersions, formatVersion, parseVersion, type PythonVersion } from "./version.ts";

/** Where python-build-standalone releases live; the compact catalog stores URLs after it. */
export const PBS_PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download/";

/** The archive flavours, best first, as uv prefers them. */
export const FLAVOURS = ["install_only_stripped", "install_only", "full"] as const;

/** An archive flavour. */
export type Flavour = typeof FLAVOURS[number];

/** One downloadable CPython build. */
export interface Download {
  /** uv-style key, e.g. `cpython-3.13.9+freethreaded-linux-x86_64_v3-gnu`. */
  key: string;
  /** The CPython version. */
  version: PythonVersion;
  /** `linux`, `macos`, `windows`. */
  os: string;
  /** Architecture family, e.g. `x86_64`, `aarch64`. */
  arch: string;
  /** x86-64 level (`v2`, `v3`, `v4`); absent for the baseline and other arches. */
  archVariant?: string;
  /** `gnu`, `musl`, `gnueabihf`, `none`, … */
  libc: string;
  /** `null` for the default build. */
  variant: Variant;
  /** The PBS release (build date), `YYYYMMDD`. */
  build: string;
  /** Full download URL. */
  url: string;
  /** Lowercase hex sha256, or `null` when PBS published none. */
  sha256: string | null;
  /** Which archive flavour the URL points at. */
  flavour: Flavour;
}

/** A loaded catalog. */
export interface Catalog {
  /** Where it came from: `embedded`, a path or a URL. */
  source: string;
  /** Every download, newest version first. */
  downloads: Download[];
  /** The newest build date, `YYYYMMDD` (or `""` when empty). */
  newestBuild: string;
}

/**
 * A target row of the compact format: `[os, arch, libc, variant, flavour, url]`,
 * where `url` is relative to `prefix` (unless absolute) with `{v}` standing for
 * the version and `{b}` for the build date.
 */
export type CompactTarget = [string, string, string, Variant, Flavour, string];

/** A download row of the compact format: `[version, build, target index, sha256]`. */
export type CompactDownload = [string, string, number, string | null];

/** pyprime's compact catalog format (`src/resolve/catalog.json`); see docs/catalog.md. */
export interface CompactCatalog {
  /** Always `pyprime-catalog`. */
  format: "pyprime-catalog";
  /** Format version, 1. */
  version: 1;
  /** The URL prefix every relative target URL is under. */
  prefix: string;
  /** Distinct platform/variant/flavour/URL-template rows. */
  targets: CompactTarget[];
  /** One row per download. */
  downloads: CompactDownload[];
}

/** A catalog that cannot be read, parsed or used, or a bad mirror. */
export class CatalogError extends PyprimeError {
  /** Creates the error; `message` names the catalog and the cause. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(message, options);
    this.name = "CatalogError";
  }
}

const VARIANTS: readonly Variant[] = [null, "freethreaded", "debug", "freethreaded+debug"];

/**
 * The archive flavour a PBS file name denotes.
 *
 * @example
 * ```ts
 * flavourOf("cpython-3.13.9%2B20251014-x86_64-unknown-linux-gnu-install_only.tar.gz"); // "install_only"
 * ```
 */
export function flavourOf(url: string): Flavour {
  const name = decodeURIComponent(url.slice(url.lastIndexOf("/") + 1));
  const match = /-(install_only_stripped|install_only)\.tar\.(?:gz|zst)$/.exec(name);
  return match ? match[1] as Flavour : "full";
}

/**
 * Sorts downloads the way the catalog file lists them: newest version first, then
 * variant (default, freethreaded, debug, both), os, arch, libc, newest build.
 */
export function sortDownloads(downloads: Download[]): Download[] {
  const text = (left: string, right: string) => (left < right ? -1 : left > right ? 1 : 0);
  return downloads.sort((left, right) =>
    compareVersions(right.version, left.version) ||
    VARIANTS.indexOf(left.variant) - VARIANTS.indexOf(right.variant) ||
    text(left.os, right.os) ||
    text(formatArch(left.arch, left.archVariant), formatArch(right.arch, right.archVariant)) ||
    text(left.libc, right.libc) ||
    text(right.build, left.build) ||
    text(left.url, right.url)
  );
}

function makeCatalog(source: string, downloads: Download[]): Catalog {
  const newestBuild = downloads.reduce((best, { build }) => (build > best ? build : best), "");
  return { source, downloads: sortDownloads(downloads), newestBuild };
}

/** The fields of a download before its key (and, optionally, flavour) are derived. */
export type DownloadFields = Omit<Download, "key" | "flavour"> & { flavour?: Flavour };

/**
 * Builds a `Download`, deriving its uv-style key and, unless given, its flavour
 * from the URL's file name.
 *
 * @example
 * ```ts
 * createDownload({ version, os: "linux", arch: "x86_64", libc: "gnu", variant: null,
 *   build: "20251014", url, sha256: null }).key; // "cpython-3.13.9-linux-x86_64-gnu"
 * ```
 */
export function createDownload(fields: DownloadFields): Download {
  const download = { ...fields, flavour: fields.flavour ?? flavourOf(fields.url) } as Download;
  if (download.archVariant === undefined) delete download.archVariant;
  download.key = installKey(download);
  return download;
}

interface RawFields extends Omit<DownloadFields, "os" | "arch" | "archVariant"> {
  os: string;
  archName: string;
}

function makeDownload(fields: RawFields, source: string, where: string): Download {
  const os = normalizeOs(fields.os);
  const arch = normalizeArch(fields.archName);
  if (os === undefined || arch === undefined) {
    throw new CatalogError(
      `Cannot read catalog ${source}: ${where} has unknown platform ${fields.os}-${fields.archName}`,
    );
  }
  const { archName: _, ...rest } = fields;
  return createDownload({ ...rest, os, ...arch });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isVariant(value: unknown): value is Variant {
  return VARIANTS.includes(value as Variant);
}

function isSha256(value: unknown): value is string | null {
  return value === null || (typeof value === "string" && /^[0-9a-f]{64}$/.test(value));
}

/** The result of converting uv's metadata: the downloads and what was left out. */
export interface UvConversion {
  /** CPython downloads of python-build-standalone. */
  downloads: Download[];
  /** Entries left out: other implementations and non-PBS archives (Pyodide). */
  skipped: number;
}

/**
 * Converts uv's `download-metadata.json` (already parsed) to downloads: CPython
 * only, PBS archives only (uv's emscripten entries point at Pyodide), `darwin`
 * renamed `macos` as in uv's installation keys.
 */
export function fromUvMetadata(data: unknown, source: string): UvConversion {
  if (!isRecord(data)) {
    throw new CatalogError(`Cannot read catalog ${source}: expected a JSON object`);
  }
  const downloads: Download[] = [];
  let skipped = 0;
  for (const [key, entry] of Object.entries(data)) {
    const where = `entry ${JSON.stringify(key)}`;
    if (!isRecord(entry)) {
      throw new CatalogError(`Cannot read catalog ${source}: ${where} is not an object`);
    }
    const url = entry.url;
    if (entry.name !== "cpython" || typeof url !== "string" || !/\/cpython-[^/]+$/.test(url)) {
      skipped++;
      continue;
    }
    const arch = entry.arch;
    const { major, minor, patch, prerelease, os, libc, variant, sha256 } = entry;
    const valid = isRecord(arch) && typeof arch.family === "string" &&
      (arch.variant === null || arch.variant === undefined || typeof arch.variant === "string") &&
      [major, minor, patch].every(Number.isInteger) && typeof prerelease === "string" &&
      typeof os === "string" && typeof libc === "string" && isVariant(variant ?? null) &&
      isSha256(sha256 ?? null);
    if (!valid) {
      throw new CatalogError(`Cannot read catalog ${source}: ${where} is not a uv download entry`);
    }
    const build = typeof entry.build === "string"
      ? entry.build
      : /\/download\/([^/]+)\//.exec(url)?.[1] ?? "";
    downloads.push(makeDownload(
      {
        version: { major, minor, patch, prerelease } as PythonVersion,
        os,
        archName: formatArch(arch.family as string, arch.variant as string | null),
        libc,
        variant: (variant ?? null) as Variant,
        build,
        url,
        sha256: (sha256 ?? null) as string | null,
      },
      source,
      where,
    ));
  }
  return { downloads, skipped };
}

function expandUrl(template: string, prefix: string, version: string, build: string): string {
  const relative = template.replaceAll("{v}", version).replaceAll("{b}", build);
  return /^[a-z]+:\/\//i.test(relative) ? relative : prefix + relative;
}

/** Reads pyprime's compact format (already parsed); throws `CatalogError` when malformed. */
export function fromCompact(data: unknown, source: string): Download[] {
  const fail = (cause: string) => new CatalogError(`Cannot read catalog ${source}: ${cause}`);
  if (!isRecord(data) || data.format !== "pyprime-catalog") throw fail("not a pyprime catalog");
  if (data.version !== 1) throw fail(`unsupported format version ${JSON.stringify(data.version)}`);
  const { prefix, targets, downloads } = data;
  if (typeof prefix !== "string" || !Array.isArray(targets) || !Array.isArray(downloads)) {
    throw fail("missing prefix, targets or downloads");
  }
  targets.forEach((target, index) => {
    const ok = Array.isArray(target) && target.length === 6 &&
      [0, 1, 2, 5].every((field) => typeof target[field] === "string") &&
      isVariant(target[3]) && FLAVOURS.includes(target[4]);
    if (!ok) throw fail(`target ${index} is malformed`);
  });
  return downloads.map((row, index) => {
    const ok = Array.isArray(row) && row.length === 4 && typeof row[0] === "string" &&
      typeof row[1] === "string" && Number.isInteger(row[2]) && targets[row[2]] !== undefined &&
      isSha256(row[3]);
    const version = ok ? parseVersion(row[0]) : undefined;
    if (!ok || version === undefined) throw fail(`download ${index} is malformed`);
    const [os, archName, libc, variant, flavour, template] = targets[row[2]] as CompactTarget;
    const url = expandUrl(template, prefix, row[0], row[1]);
    return makeDownload(
      { version, os, archName, libc, variant, build: row[1], url, sha256: row[3], flavour },
      source,
      `download ${index}`,
    );
  });
}

function templateOf(download: Download, prefix: string): string {
  const relative = download.url.startsWith(prefix)
    ? download.url.slice(prefix.length)
    : download.url;
  const version = formatVersion(download.version);
  const dated = download.build === "" ? relative : relative.replaceAll(download.build, "{b}");
  const template = dated.replaceAll(
    `cpython-${version}`,
    "cpython-{v}",
  );
  // Keep the literal text if substitution would not give the URL back.
  return expandUrl(template, prefix, version, download.build) === download.url
    ? template
    : relative;
}

/**
 * Converts downloads to the compact format: sorted, with one target row per
 * distinct platform/variant/flavour/URL template, so the embedded file stays small.
 */
export function toCompact(downloads: Download[], prefix = PBS_PREFIX): CompactCatalog {
  const sorted = sortDownloads([...downloads]);
  const targetOf = (download: Download): CompactTarget => [
    download.os,
    formatArch(download.arch, download.archVariant),
    download.libc,
    download.variant,
    download.flavour,
    templateOf(download, prefix),
  ];
  const targetKeys = [...new Set(sorted.map((download) => JSON.stringify(targetOf(download))))]
    .sort();
  const indexes = new Map(targetKeys.map((key, index) => [key, index]));
  return {
    format: "pyprime-catalog",
    version: 1,
    prefix,
    targets: targetKeys.map((key) => JSON.parse(key)),
    downloads: sorted.map((download) => [
      formatVersion(download.version),
      download.build,
      indexes.get(JSON.stringify(targetOf(download)))!,
      download.sha256,
    ]),
  };
}

/**
 * Parses catalog JSON text in either format (detected) into a `Catalog`.
 *
 * @example
 * ```ts
 * const catalog = parseCatalog(await Deno.readTextFile("download-metadata.json"), "uv.json");
 * ```
 */
export function parseCatalog(text: string, source: string): Catalog {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new CatalogError(`Cannot read catalog ${source}: not valid JSON`, {
      cause,
      hint: "pass a pyprime catalog or uv's download-metadata.json",
    });
  }
  const downloads = isRecord(data) && data.format === "pyprime-catalog"
    ? fromCompact(data, source)
    : fromUvMetadata(data, source).downloads;
  if (downloads.length === 0) {
    throw new CatalogError(`Cannot read catalog ${source}: no CPython downloads in it`, {
      hint: "pass a pyprime catalog or uv's download-metadata.json",
    });
  }
  return makeCatalog(source, downloads);
}

async function readSource(source: string): Promise<string> {
  try {
    if (/^https?:\/\//i.test(source)) {
      const { response } = await fetchFollowing(source, {});
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
      }
      return await response.text();
    }
    const path = /^file:\/\//i.test(source) ? fileURLToPath(source) : source;
    return await Deno.readTextFile(path);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound
      ? (cause as Error).message
      : describeError(cause);
    throw new CatalogError(`Cannot read catalog ${redactUrl(source)}: ${why}`, {
      cause,
      hint: "check --catalog / PYPRIME_CATALOG, or unset it to use the embedded catalog",
    });
  }
}

/**
 * Loads the embedded catalog, or `source` (a path, `file://` or `http(s)://` URL)
 * in pyprime's compact format or uv's download-metadata format.
 *
 * @example
 * ```ts
 * const catalog = await loadCatalog(Deno.env.get("PYPRIME_CATALOG"));
 * ```
 */
export async function loadCatalog(source?: string): Promise<Catalog> {
  if (source === undefined || source === "") {
    return makeCatalog("embedded", fromCompact(embedded, "embedded"));
  }
  return parseCatalog(await readSource(source), source);
}
