/**
 * `pyprime list [REQUEST]`, as `uv python list`: installed Pythons and catalog
 * downloads merged, newest first, one aligned `key  path|<download available>` line
 * each; by default only the newest patch of each minor version among the downloads;
 * `--json` rows carry uv's `--output-format json` fields.
 *
 * @module
 */
import { PyprimeError } from "../errors.ts";
import { redactUrl } from "../fetch/network_error.ts";
import { readOrigin } from "../install/origin.ts";
import { installDir } from "../install/layout.ts";
import type { Download } from "../resolve/catalog.ts";
import { catalogWithFeed } from "../resolve/feed.ts";
import { withX86_64Level, x86_64LevelSetting } from "../resolve/x86_64_level.ts";
import { matching } from "../resolve/match.ts";
import { detectPlatform, formatArch } from "../resolve/platform.ts";
import { parseKey, parseRequest } from "../resolve/request.ts";
import { compareVersions, formatVersion, type PythonVersion } from "../resolve/version.ts";
import { findInstallations, type Installation, type ManageOptions } from "./manage.ts";
import type { Output } from "./output.ts";

/** Options of `pyprime list`. */
export interface ListOptions extends ManageOptions {
  /** `--only-installed`. */
  onlyInstalled?: boolean;
  /** `--only-downloads` (alias `--only-available`). */
  onlyDownloads?: boolean;
  /** `--all-platforms`: downloads for every OS, architecture and libc. */
  allPlatforms?: boolean;
  /** `--all-arches`: downloads for every architecture of this OS and libc. */
  allArches?: boolean;
  /** `--all-versions`: every patch release, not only the newest of each minor. */
  allVersions?: boolean;
  /** `--show-urls`: the download URL instead of `<download available>`. */
  showUrls?: boolean;
  /** `--catalog`. */
  catalog?: string;
  /** `--offline`: no versions-feed refresh. */
  offline?: boolean;
  /** `--refresh`: refresh the versions feed now. */
  refresh?: boolean;
  /** `--x86-64-level`; else `PYPRIME_X86_64_LEVEL`, else the baseline. */
  x86_64Level?: string;
}

/** One row of `pyprime list --json`: uv's fields, then pyprime's `build` and `status`. */
export interface ListRow {
  /** The key, e.g. `cpython-3.12.1-linux-x86_64-gnu`. */
  key: string;
  /** `3.12.1`. */
  version: string;
  /** The version's numbers. */
  version_parts: { major: number; minor: number; patch: number };
  /** The interpreter, for installed rows; `null` for downloads. */
  path: string | null;
  /** Where `path` links to when it is a symlink, else `null`. */
  symlink: string | null;
  /** The download URL, for downloads; `null` for installed rows. */
  url: string | null;
  /** `linux`, `macos`, `windows`. */
  os: string;
  /** `default`, `freethreaded`, `debug` or `freethreaded+debug`. */
  variant: string;
  /** Always `cpython`. */
  implementation: string;
  /** `x86_64`, `x86_64_v3`, `aarch64`, … */
  arch: string;
  /** `gnu`, `musl`, `none`, … */
  libc: string;
  /** The PBS build tag (`20251014`), `local`, or `null` when unknown. */
  build: string | null;
  /** `installed` or `available`. */
  status: "installed" | "available";
}

interface Row {
  row: ListRow;
  version: PythonVersion;
}

/** A row in uv's field order, then pyprime's own fields. */
function makeRow(
  key: string,
  where: Pick<ListRow, "path" | "symlink" | "url" | "build" | "status">,
): ListRow {
  const parts = parseKey(key);
  const v = parts.version;
  return {
    key,
    version: formatVersion(v),
    version_parts: { major: v.major, minor: v.minor, patch: v.patch },
    path: where.path,
    symlink: where.symlink,
    url: where.url,
    os: parts.os,
    variant: parts.variant ?? "default",
    implementation: "cpython",
    arch: formatArch(parts.arch, parts.archVariant),
    libc: parts.libc,
    build: where.build,
    status: where.status,
  };
}

/** A download's key without the x86-64 level: installations are named that way. */
function installedName(download: Download): string {
  return download.key.replace(/-(x86_64)_v\d-/, "-$1-");
}

/** Keeps the newest patch of each minor version, per variant and platform. */
function newestPerMinor(downloads: Download[]): Download[] {
  const best = new Map<string, Download>();
  for (const d of downloads) {
    const id = [d.version.major, d.version.minor, d.variant, d.os, d.arch, d.archVariant, d.libc]
      .join("/");
    const seen = best.get(id);
    if (seen === undefined || compareVersions(d.version, seen.version) > 0) best.set(id, d);
  }
  return downloads.filter((d) =>
    best.get(
      [d.version.major, d.version.minor, d.variant, d.os, d.arch, d.archVariant, d.libc].join("/"),
    ) === d
  );
}

/**
 * The `--json` row of an installation (`list` and `find` share it).
 *
 * @example
 * ```ts
 * (await installedRow(installation)).build; // "20261120"
 * ```
 */
export async function installedRow(installation: Installation): Promise<ListRow> {
  const origin = await readOrigin(installation.path);
  return makeRow(installation.key, {
    path: installation.python,
    symlink: await symlinkOf(installation.python),
    url: null,
    build: origin?.build ?? null,
    status: "installed",
  });
}

async function symlinkOf(path: string): Promise<string | null> {
  try {
    return (await Deno.lstat(path)).isSymlink ? await Deno.readLink(path) : null;
  } catch {
    return null;
  }
}

/**
 * Runs `list`; returns the exit code.
 *
 * @example
 * ```ts
 * await runList("3.13", { onlyInstalled: true }, new Output());
 * ```
 */
export async function runList(
  request: string | undefined,
  options: ListOptions,
  out: Output,
): Promise<number> {
  if (options.onlyInstalled && options.onlyDownloads) {
    throw new PyprimeError("--only-installed and --only-downloads exclude each other", {
      exitCode: 2,
      hint: "pass one of them, or neither to list both",
    });
  }
  const rows: Row[] = [];
  const installedNames = new Set<string>();
  if (!options.onlyDownloads) {
    const dir = installDir(options.installDir);
    for (const i of await findInstallations(dir, request)) {
      installedNames.add(i.key);
      rows.push({ version: parseKey(i.key).version, row: await installedRow(i) });
    }
  }
  if (!options.onlyInstalled) {
    const catalog = await catalogWithFeed({
      catalog: options.catalog,
      offline: options.offline,
      refresh: options.refresh,
      note: (message) => out.warn(message),
    });
    const platform = options.allPlatforms
      ? undefined
      : withX86_64Level(await detectPlatform(), x86_64LevelSetting(options.x86_64Level));
    let downloads = matching(catalog, parseRequest(request ?? ">=3"), platform, {
      unique: true,
      anyArch: options.allArches,
    });
    if (!options.allVersions) downloads = newestPerMinor(downloads);
    for (const d of downloads) {
      if (installedNames.has(installedName(d))) continue;
      rows.push({
        version: d.version,
        row: makeRow(d.key, {
          path: null,
          symlink: null,
          // A catalog may carry a mirror's credentials in its URLs: never printed.
          url: redactUrl(d.url),
          build: d.build,
          status: "available",
        }),
      });
    }
  }
  rows.sort((a, b) => compareVersions(b.version, a.version) || a.row.key.localeCompare(b.row.key));
  const width = Math.max(0, ...rows.map((r) => r.row.key.length));
  for (const { row } of rows) {
    const where = row.path ?? (options.showUrls ? row.url : "<download available>");
    // Two columns for scripts; --verbose adds each installation's build tag.
    const build = out.verbosity === "verbose" && row.status === "installed" && row.build
      ? `  (build ${row.build})`
      : "";
    out.data(`${row.key.padEnd(width)}  ${where}${build}`);
  }
  out.jsonData(rows.map((r) => r.row));
  return 0;
}
