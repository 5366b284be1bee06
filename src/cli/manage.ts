/**
 * The everyday commands over installed keys: `list`, `find`, `uninstall`, `dir`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { minorDirName } from "../install/minor_links.ts";
import { binDir, syncLinks } from "../install/bin_links.ts";
import { PyprimeError } from "../errors.ts";
import { exists } from "../fs.ts";
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
import { installedRow } from "./list.ts";
import { requiredProjectRequests } from "./project_requests.ts";

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

/**
 * `pyprime find [KEY]`: the newest matching interpreter's path; exit 1 when none.
 * Without a request, the project's (see `resolve/project.ts`), its first line.
 */
export async function runFind(
  request: string | undefined,
  options: ManageOptions & { resolveLinks?: boolean },
  out: Output,
) {
  const dir = installDir(options.installDir);
  request ??= (await requiredProjectRequests(out))[0];
  const found = await findInstallations(dir, request);
  if (found.length === 0) {
    out.error(`No installed Python matches ${JSON.stringify(request)}`, "see `pyprime list`");
    out.jsonData(null);
    return 1;
  }
  // The newest whose interpreter is really there: a folder with a key's name but no
  // working bin/python3 (deleted by hand, half copied) is not an installation to print.
  let newest: Installation | undefined;
  for (const candidate of found.toReversed()) {
    if (await isExecutable(candidate.python)) {
      newest = candidate;
      break;
    }
    out.warn(`${candidate.path} has no executable bin/python3; skipped`);
  }
  if (!newest) {
    out.error(
      `No working installation matches ${JSON.stringify(request)}: ${found[0].python} is missing`,
      `reinstall it: pyprime install ${found.at(-1)!.key} --reinstall`,
    );
    out.jsonData(null);
    return 1;
  }
  const shown = options.resolveLinks ? newest : await throughMinorLink(newest);
  out.data(shown.python);
  out.jsonData(await installedRow(shown));
  return 0;
}

/**
 * The installation as seen through its minor-version link (a path that survives
 * upgrades), when that link points at it; else the installation itself.
 */
async function throughMinorLink(installation: Installation): Promise<Installation> {
  const name = minorDirName(installation.key);
  if (name === undefined) return installation;
  const link = join(dirname(installation.path), name);
  const target = await Deno.readLink(link).catch(() => undefined);
  if (target !== installation.key) return installation;
  return { ...installation, path: link, python: interpreterPath(link) };
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
    throw new PyprimeError("Nothing to uninstall", {
      exitCode: 2,
      hint: "name a version or key, or pass --all",
    });
  }
  const chosen = installDir(options.installDir);
  binDir(options.binDir); // a usage error before anything is removed
  if (!(await exists(chosen))) {
    // Nothing was ever installed there: say so without creating the folder.
    for (const request of requests) {
      out.error(`No installed Python matches ${JSON.stringify(request)}`, "see `pyprime list`");
    }
    if (options.all) out.info(`No Pythons are installed in ${chosen}`);
    out.jsonData({ removed: [], links: { linked: {}, removed: [], skipped: [] } });
    return requests.length > 0 ? 1 : 0;
  }
  const dir = await prepareInstallDir(chosen);
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

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}
