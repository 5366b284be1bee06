/**
 * `pyprime upgrade [REQUEST…]` (also `install --upgrade`): for each installed minor
 * version (or the requested ones), installs the catalog's newest patch of the same
 * variant and platform when it is newer, or a newer PBS build of the same version
 * (then the key is reinstalled). The minor-version link and the bin links move to it.
 * Older patches stay, as in uv (a venv or a running process may use their own path),
 * unless `--prune`.
 *
 * @module
 */
import { join } from "node:path";
import { PyprimeError } from "../errors.ts";
import { compareKeys, installDir, installedKeys } from "../install/layout.ts";
import { minorDirName } from "../install/minor_links.ts";
import { readOrigin } from "../install/origin.ts";
import { Planner } from "../resolve/plan.ts";
import { resolve } from "../resolve/match.ts";
import { matchesInstalled, parseKey, parseRequest } from "../resolve/request.ts";
import { compareVersions, formatVersion } from "../resolve/version.ts";
import { type InstallCommandOptions, runInstall } from "./install.ts";
import { runUninstall } from "./manage.ts";
import type { Output } from "./output.ts";

/** Options of {@link runUpgrade}: those of install, and `--prune`. */
export interface UpgradeOptions extends InstallCommandOptions {
  /** Remove the older patches of each upgraded minor version. */
  prune?: boolean;
}

/** What happened to one installed minor version. */
export interface UpgradeStep {
  /** The minor-version link name, e.g. `cpython-3.14-linux-x86_64-gnu`. */
  minor: string;
  /** The installed key it pointed at. */
  from: string;
  /** The catalog download's key, when newer. */
  to?: string;
  /**
   * `upgraded`, `rebuilt` (same version, newer PBS build), `up-to-date`, or
   * `not-in-catalog` (nothing to upgrade to: installed from a local archive).
   */
  status: "upgraded" | "rebuilt" | "up-to-date" | "not-in-catalog";
}

/**
 * Runs `upgrade`; returns the exit code.
 *
 * @example
 * ```ts
 * await runUpgrade(["3.14"], { bytecode: false }, new Output());
 * ```
 */
export async function runUpgrade(
  requests: string[],
  options: UpgradeOptions,
  out: Output,
): Promise<number> {
  const dir = installDir(options.installDir);
  const parsed = requests.map((r) => parseRequest(r));
  for (const [i, request] of parsed.entries()) {
    if (request.kind !== "version" && request.kind !== "key") {
      throw new PyprimeError(
        `Cannot upgrade ${JSON.stringify(requests[i])}: not a version or key`,
        {
          exitCode: 2,
          hint: "name installed minor versions, e.g. pyprime upgrade 3.13",
        },
      );
    }
  }
  const planner = new Planner(options.plan ?? {});
  const platform = await planner.platform();
  const newest = new Map<string, string>();
  for (const key of (await installedKeys(dir)).sort(compareKeys)) {
    const parts = parseKey(key);
    if (parts.os !== platform.os || parts.arch !== platform.arch || parts.libc !== platform.libc) {
      continue;
    }
    if (parsed.length > 0 && !parsed.some((r) => matchesInstalled(r, key))) continue;
    newest.set(minorDirName(key)!, key);
  }
  if (newest.size === 0) {
    throw new PyprimeError(
      requests.length
        ? `No installed Python matches ${requests.map((r) => JSON.stringify(r)).join(", ")}`
        : `No Pythons are installed in ${dir}`,
      { hint: "install one first: pyprime install 3.13" },
    );
  }
  const catalog = await planner.catalog();
  const steps: UpgradeStep[] = [];
  for (const [minor, key] of newest) {
    const parts = parseKey(key);
    const series = `${parts.version.major}.${parts.version.minor}`;
    const variant = parts.variant ? `+${parts.variant}` : "";
    const wanted = parseRequest(
      `cpython-${series}${variant}-${parts.os}-${parts.arch}-${parts.libc}`,
    );
    let download;
    try {
      download = resolve(catalog, wanted, platform, { prereleases: options.plan?.prereleases });
    } catch (err) {
      // One minor version the catalog does not carry (an archive installed by path) must
      // not keep the others from their upgrade.
      if (!(err instanceof PyprimeError) || err.exitCode !== 1) throw err;
      out.warn(`${key}: no ${series}${variant} in the catalog to upgrade to; left as it is`);
      steps.push({ minor, from: key, status: "not-in-catalog" });
      continue;
    }
    const order = compareVersions(download.version, parts.version);
    const build = (await readOrigin(join(dir, key)))?.build;
    const rebuilt = order === 0 && build !== undefined && build !== "local" &&
      download.build > build;
    const status = order > 0 ? "upgraded" : rebuilt ? "rebuilt" : "up-to-date";
    steps.push({
      minor,
      from: key,
      ...(status === "up-to-date" ? {} : { to: download.key }),
      status,
    });
    if (status === "up-to-date") {
      const known = build && build !== "local" ? ` (build ${build})` : "";
      out.info(`${key} is the newest ${series}${variant} the catalog has${known}`);
    } else {
      out.info(
        `Upgrading ${key} to ${formatVersion(download.version)} (build ${download.build})`,
      );
    }
  }
  const todo = steps.filter((s) => s.to !== undefined);
  let code = 0;
  if (todo.length > 0) {
    // A rebuild has the key already installed: it is replaced in place.
    const reinstall = todo.some((s) => s.status === "rebuilt") || options.reinstall;
    code = await runInstall(todo.map((s) => s.to!), { ...options, reinstall }, out.nested());
  }
  if (code === 0 && options.prune) {
    const older = (await installedKeys(dir)).filter((k) => {
      const link = minorDirName(k)!;
      return todo.some((s) => s.minor === link) && newest.get(link) !== undefined &&
        k !== newestAfter(k, todo);
    });
    if (older.length > 0) {
      code = await runUninstall(
        older,
        { installDir: options.installDir, binDir: options.binDir },
        out.nested(),
      );
    }
  }
  out.jsonData(steps);
  // Named explicitly and not upgradable: the user asked for something that did not happen.
  if (code === 0 && requests.length > 0 && steps.some((s) => s.status === "not-in-catalog")) {
    return 1;
  }
  return code;
}

/** The key an upgraded minor version now has (the step's target, by version and platform). */
function newestAfter(key: string, todo: UpgradeStep[]): string | undefined {
  const step = todo.find((s) => s.minor === minorDirName(key));
  if (step?.to === undefined) return undefined;
  // Catalog keys may name an x86-64 level that installation keys never carry.
  return step.to.replace(/-(x86_64)_v\d-/, "-$1-");
}
