// deno-lint-ignore-file no-console
/**
 * Regenerates `src/resolve/catalog.json`, the catalog embedded in pyprime, from uv's
 * `download-metadata.json` (a path or URL) or, with `--from-github`, from the
 * python-build-standalone releases on GitHub and their `SHA256SUMS` assets.
 *
 *     deno run -A scripts/update_catalog.ts PATH_OR_URL [--output FILE]
 *     deno run -A scripts/update_catalog.ts --from-github [--output FILE]
 *
 * The GitHub mode mirrors uv's `crates/uv-python/fetch-download-metadata.py`:
 * per version and platform/variant it keeps one archive, preferring
 * install_only_stripped > install_only > full and optimized builds
 * (lto, pgo, not static); it drops static triples, musl builds older than
 * 20250311 (statically linked) and versions before 3.8. See docs/catalog.md.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  type CompactCatalog,
  createDownload,
  type Download,
  type Flavour,
  fromUvMetadata,
  PBS_PREFIX,
  toCompact,
} from "../src/resolve/catalog.ts";
import { normalizeArch } from "../src/resolve/platform.ts";
import type { Variant } from "../src/resolve/request.ts";
import { parseVersion, type PythonVersion } from "../src/resolve/version.ts";

/** The GitHub API listing of python-build-standalone releases. */
export const RELEASES_API =
  "https://api.github.com/repos/astral-sh/python-build-standalone/releases";

const DEFAULT_OUTPUT = fileURLToPath(new URL("../src/resolve/catalog.json", import.meta.url));

const USAGE = `usage: deno run -A scripts/update_catalog.ts PATH_OR_URL [--output FILE]
       deno run -A scripts/update_catalog.ts --from-github [--output FILE]

Writes pyprime's compact catalog (default: src/resolve/catalog.json) from uv's
download-metadata.json (a path or http(s) URL), or from the python-build-standalone
GitHub releases and their SHA256SUMS (GITHUB_TOKEN avoids API rate limits).`;

/**
 * Serializes a compact catalog: one target or download per line, so diffs of
 * `src/resolve/catalog.json` stay readable and `deno fmt` leaves it alone.
 */
export function formatCompact(catalog: CompactCatalog): string {
  const rows = (items: unknown[]) => items.map((item) => `    ${JSON.stringify(item)}`).join(",\n");
  return [
    "{",
    `  "format": ${JSON.stringify(catalog.format)},`,
    `  "version": ${catalog.version},`,
    `  "prefix": ${JSON.stringify(catalog.prefix)},`,
    `  "targets": [\n${rows(catalog.targets)}\n  ],`,
    `  "downloads": [\n${rows(catalog.downloads)}\n  ]`,
    "}",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------
// GitHub releases

/** The part of a GitHub release asset this script reads. */
export interface ReleaseAsset {
  /** File name. */
  name: string;
  /** Where to download it. */
  browser_download_url: string;
  /** `sha256:<hex>` on newer releases; GitHub did not backfill old ones. */
  digest?: string | null;
}

/** The part of a GitHub release this script reads. */
export interface Release {
  /** The PBS release date, e.g. `20251014`. */
  tag_name: string;
  /** Its files. */
  assets: ReleaseAsset[];
}

/** A parsed PBS archive name. */
export interface PbsAsset {
  /** The CPython version. */
  version: PythonVersion;
  /** The release (build date) from the URL, e.g. `20251014`. */
  release: string;
  /** `linux`, `darwin`, `windows` as PBS triples say. */
  os: string;
  /** Architecture family. */
  arch: string;
  /** x86-64 level, if any. */
  archVariant?: string;
  /** `gnu`, `musl`, …, or `none`. */
  libc: string;
  /** Build options such as `pgo`, `lto`, `freethreaded`, `debug`, `static`. */
  buildOptions: string[];
  /** The flavour as written (`install_only_stripped`, `install_only`, `full`, …). */
  flavor: string;
  /** The variant the build options denote. */
  variant: Variant;
  /** Decoded file name, as listed in `SHA256SUMS`. */
  filename: string;
  /** Download URL. */
  url: string;
  /** The asset's GitHub digest, if any. */
  digest: string | null;
}

// Old releases used short platform names instead of target triples.
const SPECIAL_TRIPLES: Record<string, string> = {
  "windows-amd64-shared": "x86_64-pc-windows",
  "windows-x86-shared": "i686-pc-windows",
  "windows-amd64": "x86_64-pc-windows",
  "windows-x86": "i686-pc-windows",
  "linux64-musl": "x86_64-unknown-linux-musl",
  "linux64": "x86_64-unknown-linux-gnu",
  "macos": "x86_64-apple-darwin",
};

const VERSION = String.raw`(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)(?:\+\d+)?`;
const MODERN_RE = new RegExp(String.raw`^cpython-${VERSION}\+(\d+)-(.+)\.tar\.(?:gz|zst)$`);
const LEGACY_RE = new RegExp(
  String
    .raw`^cpython-${VERSION}-(.+)-(debug|pgo|noopt|lto|pgo\+lto)?-([a-zA-Z\d]+)\.tar\.(?:gz|zst)$`,
);

interface Triple {
  os: string;
  arch: string;
  libc: string;
  static: boolean;
  rest: string;
}

/** Splits `x86_64-unknown-linux-gnu-<rest>` into its triple and what follows. */
function splitTriple(text: string): Triple | undefined {
  for (const [short, triple] of Object.entries(SPECIAL_TRIPLES)) {
    if (text === short || text.startsWith(`${short}-`)) {
      return splitTriple(
        triple + "-" + (triple.endsWith("windows") ? "msvc-" : "") + text.slice(short.length + 1),
      );
    }
  }
  const pieces = text.split("-");
  const [arch, vendor, system] = pieces;
  let length: number;
  let libc = "none";
  if (vendor === "apple" && system === "darwin") length = 3;
  else if (vendor === "pc" && system === "windows" && pieces[3] === "msvc") {
    length = ["shared", "static"].includes(pieces[4]) ? 5 : 4;
  } else if (vendor === "unknown" && system === "linux" && pieces[3]) {
    length = 4;
    libc = pieces[3];
  } else return undefined;
  const triple = pieces.slice(0, length);
  return {
    os: system,
    arch,
    libc,
    static: triple.includes("static"),
    rest: pieces.slice(length).join("-"),
  };
}

function variantOf(buildOptions: string[]): Variant {
  const freethreaded = buildOptions.includes("freethreaded");
  const debug = buildOptions.includes("debug");
  if (freethreaded && debug) return "freethreaded+debug";
  return freethreaded ? "freethreaded" : debug ? "debug" : null;
}

/**
 * Parses a PBS download URL into its parts, or `undefined` for files that are not
 * CPython archives pyprime can use (checksum files, static or unknown triples).
 *
 * @example
 * ```ts
 * parsePbsAsset(PBS_PREFIX + "20251014/cpython-3.13.9%2B20251014-x86_64_v3-unknown-linux-gnu-install_only.tar.gz");
 * ```
 */
export function parsePbsAsset(url: string, digest: string | null = null): PbsAsset | undefined {
  const segments = url.split("/");
  const filename = decodeURIComponent(segments.at(-1) ?? "");
  const release = segments.at(-2) ?? "";
  let version: string;
  let triple: Triple | undefined;
  let buildOptions: string[];
  let flavor: string;
  const modern = MODERN_RE.exec(filename);
  if (modern) {
    version = modern[1];
    triple = splitTriple(modern[3]);
    if (triple === undefined) return undefined;
    const rest = triple.rest.split("-");
    flavor = rest.length > 0 && rest[0] !== "" ? rest.at(-1)! : "full";
    buildOptions = rest.length > 1 ? rest.slice(0, -1).join("-").split("+") : [];
  } else {
    const legacy = LEGACY_RE.exec(filename);
    if (!legacy) return undefined;
    version = legacy[1];
    triple = splitTriple(legacy[2]);
    if (triple === undefined || triple.rest !== "") return undefined;
    buildOptions = legacy[3] ? legacy[3].split("+") : [];
    flavor = "full";
  }
  const parsedVersion = parseVersion(version);
  const arch = normalizeArch(triple.arch);
  if (triple.static || parsedVersion === undefined || arch === undefined) return undefined;
  return {
    version: parsedVersion,
    release,
    os: triple.os,
    ...arch,
    libc: triple.libc,
    buildOptions,
    flavor,
    variant: variantOf(buildOptions),
    filename,
    url,
    digest: digest?.startsWith("sha256:") ? digest.slice("sha256:".length) : null,
  };
}

const FLAVOR_PREFERENCES = [
  "install_only_stripped",
  "install_only",
  "shared-pgo",
  "shared-noopt",
  "static-noopt",
];

// Default musl builds were static, which Python extensions cannot load, until this release.
const MUSL_DYNAMIC_SINCE = "20250311";

/** uv's priority of an archive; lower is better. */
function priority(asset: PbsAsset): [number, number] {
  const index = FLAVOR_PREFERENCES.indexOf(asset.flavor);
  const flavor = index === -1 ? FLAVOR_PREFERENCES.length + 1 : index;
  const options = asset.buildOptions;
  const optimized = Number(options.includes("lto")) + Number(options.includes("pgo")) +
    Number(!options.includes("static"));
  return [flavor, -optimized];
}

/**
 * Keeps one archive per version, platform and variant, as uv does: the best
 * flavour, then the most optimized build; on a tie the one seen first (newest
 * release, assets sorted by URL) wins.
 */
export function selectAssets(assets: Iterable<PbsAsset>): PbsAsset[] {
  const selected = new Map<string, { asset: PbsAsset; rank: [number, number] }>();
  for (const asset of assets) {
    if (asset.libc === "musl" && asset.release < MUSL_DYNAMIC_SINCE) continue;
    if (asset.version.major < 3 || (asset.version.major === 3 && asset.version.minor < 8)) continue;
    const id = JSON.stringify([
      asset.version,
      asset.os,
      asset.arch,
      asset.archVariant,
      asset.libc,
      asset.variant,
    ]);
    const rank = priority(asset);
    const existing = selected.get(id);
    if (
      existing &&
      (rank[0] > existing.rank[0] || (rank[0] === existing.rank[0] && rank[1] >= existing.rank[1]))
    ) {
      continue;
    }
    selected.set(id, { asset, rank });
  }
  return [...selected.values()].map(({ asset }) => asset);
}

/**
 * Parses a `SHA256SUMS` file (`<hex>  <file name>` per line) into a map.
 *
 * @example
 * ```ts
 * parseSha256Sums("ab…  cpython-3.13.9+20251014-….tar.gz\n").get("cpython-3.13.9+20251014-….tar.gz");
 * ```
 */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$/.exec(line);
    if (match) sums.set(match[2], match[1].toLowerCase());
  }
  return sums;
}

/** A `fetch`-compatible function, injectable for tests. */
export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** Options for `catalogFromGithub`. */
export interface GithubOptions {
  /** Defaults to the global `fetch`. */
  fetch?: Fetch;
  /** A GitHub token, raising the API rate limit. */
  token?: string;
  /** Progress messages. */
  log?: (message: string) => void;
  /** Stop after this many pages of 100 releases. */
  maxPages?: number;
}

async function fetchOk(fetcher: Fetch, url: string, headers: HeadersInit): Promise<Response> {
  const response = await fetcher(url, { headers });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`GET ${url}: HTTP ${response.status}`);
  }
  return response;
}

/** Lists every python-build-standalone release, newest first, through the GitHub API. */
export async function listReleases(options: GithubOptions = {}): Promise<Release[]> {
  const fetcher = options.fetch ?? fetch;
  const headers: Record<string, string> = {
    Accept: "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
  };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const releases: Release[] = [];
  for (let page = 1; page <= (options.maxPages ?? 100); page++) {
    options.log?.(`listing releases, page ${page}`);
    const response = await fetchOk(fetcher, `${RELEASES_API}?per_page=100&page=${page}`, headers);
    const rows = await response.json() as Release[];
    if (!Array.isArray(rows) || rows.length === 0) break;
    releases.push(...rows);
  }
  return releases;
}

/**
 * Builds the downloads from the GitHub releases: parse every asset, select one
 * per version/platform/variant, then take each checksum from the release's
 * `SHA256SUMS` (or the asset digest when a release has none). A digest that
 * disagrees with `SHA256SUMS` is an error.
 */
export async function catalogFromGithub(options: GithubOptions = {}): Promise<Download[]> {
  const fetcher = options.fetch ?? fetch;
  const releases = await listReleases(options);
  const assets: PbsAsset[] = [];
  const sumsUrls = new Map<string, string>();
  for (const release of releases) {
    const sorted = [...release.assets].sort((a, b) =>
      a.browser_download_url < b.browser_download_url ? -1 : 1
    );
    for (const asset of sorted) {
      if (asset.name === "SHA256SUMS") sumsUrls.set(release.tag_name, asset.browser_download_url);
      const parsed = parsePbsAsset(asset.browser_download_url, asset.digest ?? null);
      if (parsed) assets.push(parsed);
    }
  }
  const selected = selectAssets(assets);
  const sums = new Map<string, Map<string, string>>();
  for (const release of new Set(selected.map((asset) => asset.release))) {
    const url = sumsUrls.get(release);
    if (url === undefined) continue;
    options.log?.(`reading ${release}/SHA256SUMS`);
    sums.set(release, parseSha256Sums(await (await fetchOk(fetcher, url, {})).text()));
  }
  return selected.map((asset) => {
    const listed = sums.get(asset.release)?.get(asset.filename);
    if (listed && asset.digest && listed !== asset.digest) {
      throw new Error(`${asset.filename}: SHA256SUMS says ${listed}, GitHub says ${asset.digest}`);
    }
    return createDownload({
      version: asset.version,
      os: asset.os === "darwin" ? "macos" : asset.os,
      arch: asset.arch,
      archVariant: asset.archVariant,
      libc: asset.libc,
      variant: asset.variant,
      build: asset.release,
      url: asset.url,
      sha256: listed ?? asset.digest,
      flavour: (["install_only_stripped", "install_only"].includes(asset.flavor)
        ? asset.flavor
        : "full") as Flavour,
    });
  });
}

// ---------------------------------------------------------------------------
// Command line

async function readInput(pathOrUrl: string): Promise<string> {
  if (/^https?:\/\//i.test(pathOrUrl)) {
    const response = await fetchOk(fetch, pathOrUrl, {});
    return await response.text();
  }
  const path = pathOrUrl.startsWith("file://") ? fileURLToPath(pathOrUrl) : pathOrUrl;
  return await Deno.readTextFile(path);
}

/** What one run produced. */
export interface UpdateResult {
  /** Where the catalog was written. */
  output: string;
  /** Downloads written. */
  downloads: number;
  /** Input entries left out (other implementations, non-PBS archives). */
  skipped: number;
  /** Size of the written file in bytes. */
  bytes: number;
  /** The newest build date. */
  newestBuild: string;
}

/** Writes `downloads` as the compact catalog to `output`. */
export async function writeCatalog(
  downloads: Download[],
  output: string,
  skipped = 0,
): Promise<UpdateResult> {
  const text = formatCompact(toCompact(downloads, PBS_PREFIX));
  await Deno.writeTextFile(output, text);
  const newestBuild = downloads.reduce((best, { build }) => (build > best ? build : best), "");
  return {
    output,
    downloads: downloads.length,
    skipped,
    bytes: new TextEncoder().encode(text).length,
    newestBuild,
  };
}

/** Runs the script with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let output = DEFAULT_OUTPUT;
  let input: string | undefined;
  let github = false;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    if (arg === "--output" || arg === "-o") output = args[++index];
    else if (arg.startsWith("--output=")) output = arg.slice("--output=".length);
    else if (arg === "--from-github") github = true;
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      return 0;
    } else if (input === undefined && !arg.startsWith("-")) input = arg;
    else {
      console.error(`update_catalog: unexpected argument ${JSON.stringify(arg)}\n\n${USAGE}`);
      return 2;
    }
  }
  if (output === undefined || github === (input !== undefined)) {
    console.error(USAGE);
    return 2;
  }
  let result: UpdateResult;
  if (github) {
    const downloads = await catalogFromGithub({
      token: Deno.env.get("GITHUB_TOKEN"),
      log: (message) => console.error(message),
    });
    result = await writeCatalog(downloads, output);
  } else {
    const source = input!;
    const converted = fromUvMetadata(JSON.parse(await readInput(source)), source);
    result = await writeCatalog(converted.downloads, output, converted.skipped);
  }
  console.error(
    `update_catalog: wrote ${result.output}: ${result.downloads} CPython downloads ` +
      `(${result.skipped} other entries skipped), newest build ${result.newestBuild}, ` +
      `${(result.bytes / 1024).toFixed(0)} KiB`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    // A missing file, an unreachable URL or bad JSON: one line, no stack trace.
    console.error(`update_catalog: error: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
