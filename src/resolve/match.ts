/**
 * The resolution of a request to the catalog's downloads for a platform (the nearest
 * versions when nothing matches), and the URL to fetch a download from.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { isAbsolute } from "node:path";
import { type Catalog, CatalogError, type Download, PBS_PREFIX } from "./catalog.ts";
import { archLevel, formatArch, type Platform } from "./platform.ts";
import type { KeyRequest, PythonRequest, VersionRequest } from "./request.ts";
import { RequestError } from "./request_error.ts";
import { redactUrl } from "../fetch/network_error.ts";
import { compareVersions, formatVersion, type PythonVersion, versionMatches } from "./version.ts";

/** Options for `matching` and `resolve`. */
export interface MatchOptions {
  /** Allow pre-releases even when the request names none (`--prerelease`). */
  prereleases?: boolean;
  /** Keep only the preferred download per version and variant (for listings). */
  unique?: boolean;
  /** Any architecture of the platform's OS and libc (`list --all-arches`). */
  anyArch?: boolean;
}

interface Target {
  os?: string;
  arch?: string;
  libc?: string;
  /** The exact level a key asks for, or the highest the CPU supports. */
  level: { exact?: number; max: number };
}

function targetOf(
  request: VersionRequest | KeyRequest,
  platform?: Platform,
  anyArch = false,
): Target {
  const key = request.kind === "key" ? request : undefined;
  const os = key?.os ?? platform?.os;
  const arch = key?.arch ?? (anyArch ? undefined : platform?.arch);
  const samePlatform = platform !== undefined && os === platform.os && arch === platform.arch;
  let libc = key?.libc;
  if (libc === undefined && os !== undefined && platform !== undefined) {
    libc = os === platform.os ? platform.libc : os === "linux" ? "gnu" : "none";
  }
  const max = platform === undefined ? 4 : samePlatform ? archLevel(platform.archVariant) : 1;
  const exact = key?.archVariant === undefined ? undefined : archLevel(key.archVariant);
  return { os, arch, libc, level: { exact, max } };
}

function fitsTarget(download: Download, target: Target): boolean {
  const level = archLevel(download.archVariant);
  return (target.os === undefined || download.os === target.os) &&
    (target.arch === undefined || download.arch === target.arch) &&
    (target.libc === undefined || download.libc === target.libc) &&
    (target.level.exact === undefined ? level <= target.level.max : level === target.level.exact);
}

function preferred(left: Download, right: Download): number {
  return compareVersions(right.version, left.version) ||
    archLevel(right.archVariant) - archLevel(left.archVariant) ||
    (right.build > left.build ? 1 : right.build < left.build ? -1 : 0);
}

function versionRequestOf(request: PythonRequest): VersionRequest | KeyRequest {
  if (request.kind === "version" || request.kind === "key") return request;
  throw new RequestError("A file, URL or stdin request has no catalog entry", {
    exitCode: 1,
    hint: "install it directly; only versions and keys are looked up in the catalog",
  });
}

/**
 * Every download matching `request` for `platform` (or any platform when omitted),
 * best first: newest version, then the highest x86-64 level the CPU supports.
 * Pre-releases only when the request names one or `options.prereleases` is set.
 *
 * @example
 * ```ts
 * matching(catalog, parseRequest("3.13"), platform, { unique: true }).map((d) => d.key);
 * ```
 */
export function matching(
  catalog: Catalog,
  request: PythonRequest,
  platform?: Platform,
  options: MatchOptions = {},
): Download[] {
  const wanted = versionRequestOf(request);
  const target = targetOf(wanted, platform, options.anyArch);
  const found = catalog.downloads
    .filter((download) =>
      download.variant === wanted.variant && fitsTarget(download, target) &&
      versionMatches(wanted, download.version, options)
    )
    .sort(preferred);
  if (!options.unique) return found;
  const seen = new Set<string>();
  return found.filter((download) => {
    const id = `${
      formatVersion(download.version)
    }+${download.variant}-${download.os}-${download.arch}-${download.libc}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * The one download to install for `request` on `platform`: the newest matching
 * stable release (pre-releases when asked), at the best x86-64 level the CPU
 * supports. Throws `RequestError` listing the nearest versions when none matches.
 *
 * @example
 * ```ts
 * const download = resolve(catalog, parseRequest("3.13"), await detectPlatform());
 * ```
 */
export function resolve(
  catalog: Catalog,
  request: PythonRequest,
  platform: Platform,
  options: MatchOptions = {},
): Download {
  const found = matching(catalog, request, platform, options);
  if (found.length > 0) return found[0];
  throw noMatchError(catalog, versionRequestOf(request), platform, options);
}

function describeTarget(target: Target): string {
  const level = target.level.exact ?? (target.level.max > 1 ? target.level.max : undefined);
  const arch = formatArch(target.arch ?? "any", level === undefined ? undefined : `v${level}`);
  return `${target.os ?? "any"}-${arch}-${target.libc ?? "any"}`;
}

/** Versions nearest to what the request names, newest first. */
function nearestVersions(
  versions: PythonVersion[],
  wanted: number[],
  count: number,
): PythonVersion[] {
  const lines = new Map<string, PythonVersion[]>();
  for (const version of versions) {
    const line = `${version.major}.${version.minor}`;
    lines.set(line, [...(lines.get(line) ?? []), version]);
  }
  const [major = 3, minor, patch = 0] = wanted;
  const sameLine = minor === undefined ? undefined : lines.get(`${major}.${minor}`);
  const picked = sameLine
    ? [...sameLine].sort((a, b) =>
      Math.abs(a.patch - patch) - Math.abs(b.patch - patch) || compareVersions(b, a)
    )
      .slice(0, count)
    : [...lines.values()]
      .map((line) => line.sort((a, b) => compareVersions(b, a))[0])
      .sort((a, b) =>
        Math.abs(a.major - major) - Math.abs(b.major - major) ||
        Math.abs(a.minor - (minor ?? a.minor)) - Math.abs(b.minor - (minor ?? b.minor)) ||
        compareVersions(b, a)
      )
      .slice(0, count);
  return picked.sort((a, b) => compareVersions(b, a));
}

function noMatchError(
  catalog: Catalog,
  request: VersionRequest | KeyRequest,
  platform: Platform,
  options: MatchOptions,
): RequestError {
  const target = targetOf(request, platform);
  const onTarget = catalog.downloads.filter((download) =>
    download.variant === request.variant && fitsTarget(download, target)
  );
  const where = describeTarget(target);
  const what = request.variant ? `${request.variant} CPython` : "CPython";
  if (onTarget.length === 0) {
    const platforms = [...new Set(catalog.downloads.map((d) => `${d.os}-${d.arch}-${d.libc}`))]
      .sort();
    return new RequestError(
      `No ${what} for ${where} in the catalog (asked for ${JSON.stringify(request.text)})`,
      {
        exitCode: 1,
        hint: `use --platform with one of ${
          platforms.join(", ")
        }; or --catalog FILE|URL for another catalog`,
      },
    );
  }
  const prereleases = onTarget.filter((download) =>
    download.version.prerelease !== "" &&
    versionMatches(request, download.version, { prereleases: true })
  );
  if (prereleases.length > 0 && !request.prereleases && !options.prereleases) {
    const newest = prereleases.sort(preferred)[0];
    return new RequestError(
      `No stable ${what} matches ${
        JSON.stringify(request.text)
      } for ${where}; pre-release available: ${formatVersion(newest.version)}`,
      {
        exitCode: 1,
        hint: `ask for the pre-release explicitly, e.g. pyprime install ${
          formatVersion(newest.version)
        }`,
      },
    );
  }
  const stable = onTarget.filter((download) => download.version.prerelease === "");
  const pool = (stable.length > 0 ? stable : onTarget).map((download) => download.version);
  const unique = [...new Map(pool.map((version) => [formatVersion(version), version])).values()];
  const wanted = request.specifiers[0]?.release ?? [];
  const nearest = nearestVersions(unique, wanted, 5).map(formatVersion);
  return new RequestError(
    `No ${what} matches ${JSON.stringify(request.text)} for ${where}; nearest available: ${
      nearest.join(", ")
    }`,
    {
      exitCode: 1,
      hint: "ask for one of those versions, or pass --catalog FILE|URL for a newer catalog",
    },
  );
}

/**
 * Rewrites a python-build-standalone URL to a mirror (`--mirror`,
 * `PYPRIME_PYTHON_INSTALL_MIRROR`): an `http(s)://` or `file://` base or an
 * absolute folder path (returned as a `file://` URL); trailing slash optional.
 * URLs outside python-build-standalone are returned unchanged.
 *
 * @example
 * ```ts
 * mirrorUrl(download, "/srv/pbs"); // "file:///srv/pbs/20251014/cpython-3.13.9%2B20251014-…"
 * ```
 */
export function mirrorUrl(download: Pick<Download, "url">, mirror?: string): string {
  if (mirror === undefined || mirror === "" || !download.url.startsWith(PBS_PREFIX)) {
    return download.url;
  }
  return mirrorBase(mirror) + "/" + download.url.slice(PBS_PREFIX.length);
}

/**
 * The base URL of a mirror, without a trailing slash; a usage error (exit 2) when it is
 * neither an `http(s)://` or `file://` URL nor an absolute path.
 *
 * @example
 * ```ts
 * mirrorBase("/srv/pbs/"); // "file:///srv/pbs"
 * ```
 */
export function mirrorBase(mirror: string): string {
  let base: string;
  if (/^(https?|file):\/\/./i.test(mirror)) base = mirror;
  else if (isAbsolute(mirror)) base = pathToFileURL(mirror).href;
  else {
    throw new CatalogError(
      `Invalid mirror ${
        JSON.stringify(redactUrl(mirror))
      }: not an http(s):// or file:// URL or an absolute path`,
      {
        exitCode: 2,
        hint:
          "set --mirror / PYPRIME_PYTHON_INSTALL_MIRROR to e.g. https://mirror.example/pbs/ or /srv/pbs",
      },
    );
  }
  return base.replace(/\/+$/, "");
}

/** Astral's mirror of PBS's GitHub releases, which uv downloads from first. */
export const ASTRAL_PREFIX =
  "https://releases.astral.sh/github/python-build-standalone/releases/download/";

/**
 * The URLs to try for a download, in order: each `--mirror` given (see
 * {@link mirrorUrl}); with none, Astral's mirror then GitHub for a PBS URL, as uv
 * does (GitHub's rate limits, uv #18503); any other URL alone.
 *
 * @example
 * ```ts
 * downloadUrls(download); // [ASTRAL_PREFIX + "20251014/cpython-…", download.url]
 * ```
 */
export function downloadUrls(
  download: Pick<Download, "url">,
  mirror?: string | string[],
): string[] {
  const mirrors = (typeof mirror === "string" ? [mirror] : mirror ?? []).filter((m) => m !== "");
  if (mirrors.length > 0) return [...new Set(mirrors.map((m) => mirrorUrl(download, m)))];
  if (!download.url.startsWith(PBS_PREFIX)) return [download.url];
  return [ASTRAL_PREFIX + download.url.slice(PBS_PREFIX.length), download.url];
}

/**
 * The age of a catalog in whole days, from its newest build date to `now`.
 *
 * @example
 * ```ts
 * catalogAgeDays(await loadCatalog()); // e.g. 12
 * ```
 */
export function catalogAgeDays(
  catalog: Pick<Catalog, "newestBuild">,
  now: Date = new Date(),
): number {
  const match = /^(\d{4})(\d{2})(\d{2})/.exec(catalog.newestBuild);
  if (!match) return Number.NaN;
  const built = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return Math.floor((now.getTime() - built) / 86_400_000);
}
