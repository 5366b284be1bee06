/**
 * `pyprime self-check`: where things go and what pyprime sees, for bug reports and
 * for checking a fresh machine.
 *
 * @module
 */
import { binDir, onPath } from "../install/bin_links.ts";
import { catalogWithFeed } from "../resolve/feed.ts";
import { catalogAgeDays } from "../resolve/match.ts";
import { installDir, installedKeys } from "../install/layout.ts";
import type { Output } from "./output.ts";
import { archLevel, detectPlatform, formatPlatform } from "../resolve/platform.ts";
import { x86_64LevelSetting } from "../resolve/x86_64_level.ts";

/** What `self-check --json` reports. */
export interface SelfCheck {
  /** pyprime's version. */
  version: string;
  /** The Deno runtime version. */
  deno: string;
  /** The build target, e.g. `x86_64-unknown-linux-gnu`. */
  target: string;
  /** The install dir. */
  installDir: string;
  /** Installed keys. */
  installed: string[];
  /** What is wrong, when something is (the command then exits 1). */
  problems?: string[];
  /** The bin dir. */
  binDir: string;
  /** Whether the bin dir is on PATH. */
  binDirOnPath: boolean;
  /** The detected platform, e.g. `linux-x86_64_v3-gnu`. */
  platform: string;
  /** x86-64 only: the host's best level and the one installs pick (`PYPRIME_X86_64_LEVEL`). */
  x86_64Level?: { host: number; installs: number | "auto" };
  /** The catalog's source and age. */
  catalog: { source: string; newestBuild: string; ageDays: number; downloads: number };
}

/**
 * Prints the self-check as `name: value` lines, or JSON.
 *
 * @example
 * ```ts
 * await runSelfCheck("0.1.0", { catalog: undefined }, new Output());
 * ```
 */
export async function runSelfCheck(
  version: string,
  options: {
    installDir?: string;
    binDir?: string;
    catalog?: string;
    offline?: boolean;
    refresh?: boolean;
  },
  out: Output,
): Promise<number> {
  const catalog = await catalogWithFeed({ ...options, note: (message) => out.warn(message) });
  const dir = installDir(options.installDir);
  const bin = binDir(options.binDir);
  // A broken install dir is what a self-check is for: reported, not a crash.
  let problem: string | undefined;
  const installed = await installedKeys(dir).catch((err: Error) => {
    problem = err.message;
    return [];
  });
  const host = await detectPlatform();
  const report: SelfCheck = {
    version,
    deno: Deno.version.deno,
    target: Deno.build.target,
    installDir: dir,
    installed,
    ...(problem ? { problems: [problem] } : {}),
    binDir: bin,
    binDirOnPath: onPath(bin),
    platform: formatPlatform(host),
    catalog: {
      source: catalog.source,
      newestBuild: catalog.newestBuild,
      ageDays: catalogAgeDays(catalog),
      downloads: catalog.downloads.length,
    },
  };
  out.data(`pyprime: ${report.version} (deno ${report.deno}, ${report.target})`);
  out.data(
    `install dir: ${report.installDir} (${
      problem ? "unusable" : `${report.installed.length} installed`
    })`,
  );
  out.data(`bin dir: ${report.binDir} (${report.binDirOnPath ? "on PATH" : "not on PATH"})`);
  out.data(`platform: ${report.platform}`);
  if (host.arch === "x86_64") {
    const installs = x86_64LevelSetting();
    report.x86_64Level = { host: archLevel(host.archVariant), installs };
    const picked = installs === 1
      ? "baseline x86_64"
      : installs === "auto"
      ? "auto"
      : `v${installs}`;
    out.data(
      `x86-64 level: host v${report.x86_64Level.host}, installs ${picked} (PYPRIME_X86_64_LEVEL)`,
    );
  }
  out.data(
    `catalog: ${report.catalog.source}, ${report.catalog.downloads} downloads, newest build ${report.catalog.newestBuild} (${report.catalog.ageDays} days old)`,
  );
  if (!report.binDirOnPath) out.warn(`${bin} is not on PATH`, `add it: export PATH="${bin}:$PATH"`);
  if (problem) {
    out.error(problem, "pass --install-dir DIR (or PYPRIME_PYTHON_INSTALL_DIR) naming a folder");
  }
  out.jsonData(report);
  return problem ? 1 : 0;
}
