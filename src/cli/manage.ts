/**
 * The everyday commands over installed keys: `list`, `find`, `uninstall`, `dir`.
 *
 * @module
 */
import { join } from "node:path";
import { binDir, syncLinks } from "../install/bin_links.ts";
import { loadCatalog } from "../resolve/catalog.ts";
import { matching } from "../resolve/match.ts";
import { PyprimeError } from "../errors.ts";
import { detectPlatform } from "../resolve/platform.ts";
import { matchesInstalled, parseRequest } from "../resolve/request.ts";
import {
  dirError,
  needsRecovery,
  prepareInstallDir,
  removeTree,
  withInstallLock,
} from "../install/install.ts";
import { installDir, installedKeys, interpreterPath, STAGING_DIR } from "../install/layout.ts";
import type { Output } from "./output.ts";

/** Options shared by the management commands. */
export interface ManageOptions {
  /** `--install-dir`. */
  installDir?: string;
  /** `--bin-dir`. */
  binDir?: string;
}

/** One installation as `list --json` reports it. */
export interface Installation {
  /** The key, e.g. `cpython-3.12.1-linux-x86_64-gnu`. */
  key: string;
  /** Its folder. */
  path: string;
  /** Its interpreter. */
  python: string;
}

/** The installations whose key matches `request` (a key, a version, a specifier…). */
export async function findInstallations(
  dir: string,
  request?: string,
): Promise<Installation[]> {
  // A reinstall killed between its two renames leaves its key missing: every command,
  // not only the next locking one, puts it back first (under the lock, as install does).
  if (await needsRecovery(dir)) await withInstallLock(dir, () => Promise.resolve()).catch(() => {});
  const keys = await installedKeys(dir);
  const parsed = request === undefined ? undefined : parseRequest(request);
  return keys
    .filter((key) => parsed === undefined || key === request || matchesInstalled(parsed, key))
    .map((key) => ({ key, path: join(dir, key), python: interpreterPath(join(dir, key)) }));
}

/** Options of `pyprime list`. */
export interface ListOptions extends ManageOptions {
  /** `--only-installed`. */
  onlyInstalled?: boolean;
  /** `--only-available`. */
  onlyAvailable?: boolean;
  /** `--all-platforms`. */
  allPlatforms?: boolean;
  /** `--catalog`. */
  catalog?: string;
}

/** One row of `pyprime list`: installed (with a path) or available (with a URL). */
export interface ListRow {
  /** The key. */
  key: string;
  /** The interpreter, for installed rows. */
  python?: string;
  /** The download URL, for available rows. */
  url?: string;
  /** `installed` or `available`. */
  status: "installed" | "available";
}

/**
 * `pyprime list [REQUEST]`: installed Pythons, then the catalog's downloads for this
 * platform not installed yet (one per version); text `key  path|<download available>`.
 */
export async function runList(request: string | undefined, options: ListOptions, out: Output) {
  const rows: ListRow[] = [];
  if (!options.onlyAvailable) {
    const found = await findInstallations(installDir(options.installDir), request);
    rows.push(
      ...found.map((i) => ({ key: i.key, python: i.python, status: "installed" as const })),
    );
  }
  if (!options.onlyInstalled) {
    const catalog = await loadCatalog(options.catalog);
    const platform = options.allPlatforms ? undefined : await detectPlatform();
    const installed = new Set(rows.map((r) => r.key));
    const wanted = parseRequest(request ?? ">=3");
    for (const d of matching(catalog, wanted, platform, { unique: true })) {
      if (installed.has(d.key)) continue;
      rows.push({ key: d.key, url: d.url, status: "available" });
    }
  }
  for (const r of rows) out.data(`${r.key}  ${r.python ?? "<download available>"}`);
  out.jsonData(rows);
  return 0;
}

/** `pyprime find KEY`: the newest matching interpreter's path; exit 1 when none. */
export async function runFind(request: string, options: ManageOptions, out: Output) {
  const found = await findInstallations(installDir(options.installDir), request);
  const newest = found.at(-1);
  if (!newest) {
    out.error(`No installed Python matches ${JSON.stringify(request)}`, "see `pyprime list`");
    out.jsonData(null);
    return 1;
  }
  out.data(newest.python);
  out.jsonData(newest);
  return 0;
}

/** `pyprime dir [--bin]`: the install dir, or the bin dir. */
export function runDir(options: ManageOptions & { bin?: boolean }, out: Output) {
  const dir = options.bin ? binDir(options.binDir) : installDir(options.installDir);
  out.data(dir);
  out.jsonData(options.bin ? { binDir: dir } : { installDir: dir });
  return 0;
}

/**
 * `pyprime uninstall KEY…|--all`: each installation is first renamed into the
 * staging folder (so it disappears at once), then deleted.
 */
export async function runUninstall(
  requests: string[],
  options: ManageOptions & { all?: boolean },
  out: Output,
) {
  if (!options.all && requests.length === 0) {
    throw new PyprimeError("Nothing to uninstall", { hint: "name a key, or pass --all" });
  }
  const dir = await prepareInstallDir(installDir(options.installDir));
  return await withInstallLock(dir, async () => {
    const removed: string[] = [];
    let missing = 0;
    const targets = options.all
      ? await findInstallations(dir)
      : (await Promise.all(requests.map(async (request) => {
        const found = await findInstallations(dir, request);
        if (found.length === 0) {
          out.error(`No installed Python matches ${JSON.stringify(request)}`, "see `pyprime list`");
          missing++;
        }
        return found;
      }))).flat();
    for (const { key, path } of new Map(targets.map((t) => [t.key, t])).values()) {
      const aside = join(dir, STAGING_DIR, `uninstall-${crypto.randomUUID().slice(0, 8)}`);
      try {
        await Deno.rename(path, aside);
        await removeTree(aside);
      } catch (err) {
        throw dirError(dir, err);
      }
      removed.push(key);
      out.info(`Uninstalled ${key}`);
    }
    const links = await syncLinks(dir, binDir(options.binDir));
    for (const name of links.removed) out.debug(`Removed ${name} from the bin dir`);
    for (const [name, target] of Object.entries(links.linked)) {
      out.debug(`Linked ${name} -> ${target}`);
    }
    out.jsonData({ removed, links });
    return missing ? 1 : 0;
  });
}
