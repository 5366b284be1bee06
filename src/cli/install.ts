/**
 * `pyprime install SOURCE…`: stage every source in parallel under the install
 * dir's lock, drop the network permission, compile each staged tree, then promote.
 *
 * @module
 */
import { basename } from "node:path";
import { compileTree } from "../bytecode/pool.ts";
import { removeBytecodeOf, writeBytecodeRecord } from "../bytecode/record.ts";
import type { BytecodeSettings, CompileReport } from "../bytecode/settings.ts";
import { summarizeCompile } from "./summary.ts";
import { PyprimeError } from "../errors.ts";
import { abortOnSignals } from "../signals.ts";
import type { ExtractLimits } from "../unpack/limits.ts";
import {
  prepareInstallDir,
  promote,
  removeTree,
  stageArchive,
  type Staged,
  withInstallLock,
} from "../install/install.ts";
import { installDir as defaultInstallDir, interpreterPath } from "../install/layout.ts";
import type { Output } from "./output.ts";
import { normalizeSha256 } from "../fetch/digest.ts";
import { binDir, onPath, syncLinks } from "../install/bin_links.ts";
import { NetworkError } from "../fetch/network_error.ts";
import { installedKeys } from "../install/layout.ts";
import { type Plan, Planner, type PlanSettings } from "../resolve/plan.ts";
import { matchesInstalled, parseKey } from "../resolve/request.ts";

/** Options of {@link runInstall}, as parsed from the command line. */
export interface InstallCommandOptions {
  /** `--install-dir`. */
  installDir?: string;
  /** `--sha256`. */
  sha256?: string;
  /** `--reinstall`. */
  reinstall?: boolean;
  /** Bytecode settings, or `false` for `--no-compile-bytecode`. */
  bytecode: BytecodeSettings | false;
  /** Extraction limits overrides. */
  limits?: Partial<ExtractLimits>;
  /** Catalog, platform, mirror, cache and network settings. */
  plan?: PlanSettings;
  /** `--bin-dir`. */
  binDir?: string;
  /** `--no-bin`: create no executables. */
  noBin?: boolean;
  /** `--default`: also link `python3` and `python`. */
  default?: boolean;
  /** `--force`: replace executables pyprime did not create. */
  force?: boolean;
}

/** How many times a download that dropped and cannot resume is started over. */
const RESTARTS = 2;

/** What one source ended as; the `--json` document is a list of these. */
export interface InstallOutcome {
  /** The source as given. */
  source: string;
  /** The installation key. */
  key: string;
  /** `installed`, `reinstalled` or `already-installed`. */
  status: "installed" | "reinstalled" | "already-installed";
  /** The installation folder. */
  path: string;
  /** Its interpreter. */
  python: string;
  /** sha256 of the archive (absent when nothing was read). */
  sha256?: string;
  /** Container format (absent when nothing was read). */
  format?: string;
  /** Files extracted. */
  files?: number;
  /** Seconds streaming and extracting. */
  extractSeconds?: number;
  /** Bytecode report, when compiled. */
  bytecode?: CompileReport;
  /** Permissions dropped before compiling. */
  revoked: string[];
  /** Installed for another platform (`--platform`): not probed, not compiled, not linked. */
  foreign?: boolean;
}

/** Drops the network permission once every byte has been read. */
async function revokeNetwork(): Promise<string[]> {
  const status = await Deno.permissions.revoke({ name: "net" });
  return status.state === "granted" ? [] : ["net"];
}

/**
 * Runs the install command; returns the exit code.
 *
 * @example
 * ```ts
 * await runInstall(["cpython.tar.zst"], { bytecode: false }, new Output());
 * ```
 */
export async function runInstall(
  sources: string[],
  options: InstallCommandOptions,
  out: Output,
): Promise<number> {
  await out.ready();
  if (sources.filter((s) => s === "-").length > 1) {
    throw new PyprimeError("Cannot read standard input twice", { hint: "pass - only once" });
  }
  if (options.default && sources.length > 1) {
    throw new PyprimeError("--default names one Python, but several requests were given", {
      exitCode: 2,
      hint: "install them first, then run `pyprime install REQUEST --default` for the default one",
    });
  }
  const sha256 = options.sha256 === undefined ? undefined : normalizeSha256(options.sha256);
  if (sha256 && sources.length > 1) {
    throw new PyprimeError("--sha256 names one archive, but several sources were given", {
      hint: "install the archives one at a time",
    });
  }
  const dir = await prepareInstallDir(defaultInstallDir(options.installDir));
  const controller = new AbortController();
  // Signals are caught only once the lock is held: while waiting for it nothing is
  // staged, and the default action (the process ends at once) is what the user wants.
  let stopListening = () => {};
  try {
    return await withInstallLock(
      dir,
      () => {
        stopListening = abortOnSignals(controller);
        return installAll(sources, { ...options, sha256 }, dir, controller.signal, out);
      },
      () => out.info(`Waiting for another pyprime process to finish in ${dir}`),
    );
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    stopListening();
  }
}

async function installAll(
  sources: string[],
  options: InstallCommandOptions,
  dir: string,
  signal: AbortSignal,
  out: Output,
): Promise<number> {
  const planner = new Planner({
    ...options.plan,
    download: {
      ...options.plan?.download,
      onRetry: (attempt, reason, delay) =>
        out.warn(`${reason}; retry ${attempt} in ${(delay / 1000).toFixed(1)}s`),
    },
  });
  const plans = await Promise.all(sources.map((spec) => planner.plan(spec, options.sha256)));
  const outcomes: InstallOutcome[] = [];
  const toStage: Plan[] = [];
  for (const plan of plans) {
    const hit = options.reinstall ? undefined : await installedFor(plan, dir, planner);
    if (hit) {
      out.info(`${hit} is already installed in ${dir}`);
      const path = `${dir}/${hit}`;
      out.data(interpreterPath(path));
      outcomes.push({
        source: plan.spec,
        key: hit,
        status: "already-installed",
        path,
        python: interpreterPath(path),
        revoked: [],
      });
    } else toStage.push(plan);
  }
  const results = await Promise.allSettled(
    toStage.map(async (plan) => ({ spec: plan.spec, staged: await stageWithRestarts(plan) })),
  );
  const staged = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) {
    await Promise.all(staged.map(({ staged }) => removeTree(staged.staging)));
    throw failure.reason;
  }
  const revoked = await revokeNetwork();
  out.debug(`Revoked permissions: ${revoked.join(", ") || "none"}`);

  const promoted = new Set<string>();
  let next = 0;
  try {
    for (; next < staged.length; next++) {
      const { spec, staged: one } = staged[next];
      // Two sources of one key: the first is installed, the next ones are duplicates.
      const duplicate = promoted.has(one.info.key);
      promoted.add(one.info.key);
      const it = duplicate ? { ...one, alreadyInstalled: true } : one;
      outcomes.push(await finish(spec, it, options, signal, out, revoked));
    }
  } finally {
    // A failure or a signal in one source must not leave the others' staging behind.
    await Promise.all(staged.slice(next + 1).map(({ staged }) => removeTree(staged.staging)));
  }
  if (!options.noBin) await linkExecutables(dir, outcomes, options, out);
  out.jsonData(outcomes);
  return 0;

  async function stageWithRestarts(plan: Plan): Promise<Staged> {
    for (let attempt = 0;; attempt++) {
      const bar = out.bar(`Installing ${plan.download?.key ?? basename(plan.spec)}`, 0, "bytes");
      try {
        const source = await plan.open(signal);
        if (source.size) bar.update(0, source.size);
        return await stageArchive(source, {
          installDir: dir,
          sha256: plan.sha256,
          reinstall: options.reinstall,
          limits: options.limits,
          signal,
          onBytes: (n) => bar.update(n),
          foreign: plan.foreign ? plan.download : undefined,
        });
      } catch (err) {
        if (!(err instanceof NetworkError && err.restartable) || attempt >= RESTARTS) throw err;
        out.warn(`${err.message}; starting over`);
      } finally {
        bar.stop();
      }
    }
  }
}

/** For a version or key request, an installed key that satisfies it on the target platform. */
async function installedFor(
  plan: Plan,
  dir: string,
  planner: Planner,
): Promise<string | undefined> {
  const { request } = plan;
  if (request.kind !== "version" && request.kind !== "key") return undefined;
  const platform = await planner.platform();
  // Installation keys carry no x86-64 level (the interpreter cannot tell it).
  const loose = request.kind === "key" ? { ...request, archVariant: undefined } : request;
  const keys = (await installedKeys(dir)).filter((key) => {
    if (!matchesInstalled(loose, key)) return false;
    const parts = parseKey(key);
    return parts.os === platform.os && parts.arch === platform.arch && parts.libc === platform.libc;
  });
  return keys.at(-1);
}

async function linkExecutables(
  dir: string,
  outcomes: InstallOutcome[],
  options: InstallCommandOptions,
  out: Output,
): Promise<void> {
  // Already-installed keys too: their links may be missing or waiting for --force.
  // Interpreters for another machine get no links: they cannot run here.
  const installed = outcomes.filter((o) => !o.foreign).map((o) => o.key);
  const defaultKey = options.default ? outcomes.at(-1)?.key : undefined;
  if (installed.length === 0) return;
  const bin = binDir(options.binDir);
  let report;
  try {
    report = await syncLinks(dir, bin, { installed, defaultKey, force: options.force });
  } catch (err) {
    out.warn(
      `Cannot link executables in ${bin}: ${(err as Error).message}`,
      "pass --bin-dir DIR or --no-bin; the installation itself is complete",
    );
    return;
  }
  for (const [name, target] of Object.entries(report.linked)) {
    out.debug(`Linked ${bin}/${name} -> ${target}`);
  }
  for (const name of report.skipped) {
    out.warn(
      `${bin}/${name} exists and was not created by pyprime; left alone`,
      "pass --force to replace it",
    );
  }
  if (Object.keys(report.linked).length > 0 && !onPath(bin)) {
    out.warn(`${bin} is not on PATH`, `add it: export PATH="${bin}:$PATH"`);
  }
}

async function finish(
  spec: string,
  staged: Staged,
  options: InstallCommandOptions,
  signal: AbortSignal,
  out: Output,
  revoked: string[],
): Promise<InstallOutcome> {
  const { info, target } = staged;
  const base = {
    source: spec,
    key: info.key,
    path: target,
    python: interpreterPath(target),
    sha256: staged.sha256,
    format: staged.format,
    files: staged.extract.files,
    extractSeconds: round(staged.extractSeconds),
    revoked,
    ...(staged.foreign ? { foreign: true } : {}),
  };
  if (staged.alreadyInstalled) {
    await removeTree(staged.staging);
    await commitQuietly(staged, out);
    out.info(`${info.key} is already installed in ${target}`);
    out.data(base.python);
    return { ...base, status: "already-installed" };
  }
  try {
    const runnable = staged.foreign === undefined;
    if (options.bytecode && !runnable) {
      out.warn(
        `Bytecode not compiled: ${info.key} cannot run on this machine`,
        `run \`pyprime compile ${target}\` on a ${info.os}-${info.arch}-${info.libc} machine`,
      );
    }
    const bytecode = options.bytecode && runnable
      ? await compileStaged(staged, options.bytecode, signal, out)
      : undefined;
    const replacing = await Deno.lstat(target).then(() => true, () => false);
    await promote(staged);
    await commitQuietly(staged, out);
    out.info(
      `${replacing ? "Reinstalled" : "Installed"} ${info.key} in ${
        round(staged.extractSeconds + (bytecode?.seconds ?? 0))
      }s`,
    );
    out.data(base.python);
    return { ...base, status: replacing ? "reinstalled" : "installed", bytecode };
  } catch (err) {
    // The bytes were verified: a failure now (a signal, a compile error) says nothing
    // against the cached archive, so it stays.
    await removeTree(staged.staging);
    await commitQuietly(staged, out);
    throw err;
  }
}

/** Keeps a verified download in the cache; a cache failure is only worth a warning. */
async function commitQuietly(staged: Staged, out: Output): Promise<void> {
  await staged.source.commit?.().catch((err: Error) =>
    out.warn(`Cannot keep ${staged.source.label} in the cache: ${err.message}`)
  );
}

async function compileStaged(
  staged: Staged,
  settings: BytecodeSettings,
  signal: AbortSignal,
  out: Output,
): Promise<CompileReport> {
  const bar = out.bar("Compiling bytecode", 0, "files");
  try {
    // The rewrite changed these sources after the pack was made; a same-length prefix
    // keeps their size and mtime, so a timestamp .pyc would look current: drop them.
    if (staged.pycEntries > 0) await removeBytecodeOf(staged.staging, staged.rewritten);
    const report = await compileTree({
      python: `${staged.staging}/bin/python3`,
      confineTo: staged.staging,
      roots: [staged.info.stdlib],
      ddir: { from: staged.staging, to: staged.target },
      jobs: settings.jobs,
      optimize: settings.optimize,
      invalidationMode: settings.invalidationMode,
      exclude: settings.exclude,
      timeoutMs: settings.timeoutSeconds * 1000,
      signal,
      onProgress: (done, total) => bar.update(done, total),
      // A pack ships its bytecode: keep what is current, compile the rest.
      action: staged.pycEntries > 0 ? "reuse" : "compile",
    });
    bar.stop();
    await writeBytecodeRecord(staged.staging, {
      optimize: settings.optimize,
      invalidationMode: settings.invalidationMode,
      exclude: settings.exclude.map((re) => re.source),
    });
    summarizeCompile(report, out);
    return report;
  } finally {
    bar.stop();
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
