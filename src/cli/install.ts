/**
 * `pyprime install SOURCE…`: stage every source in parallel under the install
 * dir's lock, drop the network permission, compile each staged tree, then promote.
 *
 * @module
 */
import { binDir } from "../install/bin_links.ts";
import { PACK_BUILD } from "../resolve/packs.ts";
import { basename } from "node:path";
import type { BytecodeSettings } from "../bytecode/settings.ts";
import { seconds } from "./format.ts";
import { requiredProjectRequests } from "./project_requests.ts";
import { checkVerified, commitQuietly, compileStaged } from "./install_steps.ts";
import { type Failure, type InstallOutcome, reportOutcomes } from "./install_outcomes.ts";
import { PyprimeError } from "../errors.ts";
import { abortOnSignals } from "../signals.ts";
import type { ExtractLimits } from "../unpack/limits.ts";
import {
  type Extracted,
  inspectStaged,
  prepareInstallDir,
  promote,
  removeTree,
  stageArchive,
  type Staged,
  withInstallLock,
} from "../install/install.ts";
import { installDir as defaultInstallDir, interpreterPath } from "../install/layout.ts";
import { syncMinorDirs } from "../install/minor_links.ts";
import { writeOrigin } from "../install/origin.ts";
import type { Output } from "./output.ts";
import { linkExecutables } from "./link_executables.ts";
import { normalizeSha256 } from "../fetch/digest.ts";
import { NetworkError } from "../fetch/network_error.ts";
import { installedKeys } from "../install/layout.ts";
import {
  type Expected,
  type Plan,
  Planner,
  type PlanSettings,
  type Verification,
} from "../resolve/plan.ts";
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
  /** `--require-hashes` / `PYPRIME_REQUIRE_HASHES=1`: refuse sources without a digest. */
  requireHashes?: boolean;
}

/** How many times a download that dropped and cannot resume is started over. */
const RESTARTS = 2;

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
  if (sources.length === 0) sources = await requiredProjectRequests(out);
  if (sources.filter((s) => s === "-").length > 1) {
    throw new PyprimeError("Cannot read standard input twice", { hint: "pass - only once" });
  }
  if (options.default && sources.length > 1) {
    throw new PyprimeError("--default names one Python, but several requests were given", {
      exitCode: 2,
      hint: "install them first, then run `pyprime install REQUEST --default` for the default one",
    });
  }
  const chosenDir = defaultInstallDir(options.installDir);
  if (!options.noBin) binDir(options.binDir); // a usage error before anything is read
  const sha256 = options.sha256 === undefined ? undefined : normalizeSha256(options.sha256);
  if (sha256 && sources.length > 1) {
    throw new PyprimeError("--sha256 names one archive, but several sources were given", {
      hint: "install the archives one at a time",
    });
  }
  // Every request is resolved (and every local file found) before the install dir is
  // made or a byte is read: a typo in the third request must not cost two downloads.
  const planner = new Planner({
    note: (message) => out.warn(message),
    ...options.plan,
    download: {
      ...options.plan?.download,
      onRetry: (attempt, reason, delay) =>
        out.warn(`${reason}; retry ${attempt} in ${seconds(delay / 1000)}`),
    },
  });
  const plans = await Promise.all(sources.map((spec) => planner.plan(spec, sha256)));
  const dir = await prepareInstallDir(chosenDir);
  const controller = new AbortController();
  // Signals are caught only once the lock is held: while waiting for it nothing is
  // staged, and the default action (the process ends at once) is what the user wants.
  let stopListening = () => {};
  try {
    return await withInstallLock(
      dir,
      () => {
        stopListening = abortOnSignals(controller);
        return installAll(plans, planner, options, dir, controller.signal, out);
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
  plans: Plan[],
  planner: Planner,
  options: InstallCommandOptions,
  dir: string,
  signal: AbortSignal,
  out: Output,
): Promise<number> {
  const outcomes: InstallOutcome[] = [];
  const toStage: Plan[] = [];
  for (const plan of plans) {
    const hit = options.reinstall ? undefined : await installedFor(plan, dir, planner);
    if (hit) {
      out.info(`${hit} is already installed in ${dir}`);
      const path = `${dir}/${hit}`;
      out.data(interpreterPath(path));
      outcomes.push({
        source: plan.label,
        key: hit,
        status: "already-installed",
        path,
        python: interpreterPath(path),
        revoked: [],
      });
    } else toStage.push(plan);
  }
  // Every digest is known before any byte of any archive is read: an unverified
  // archive is refused (--require-hashes) or announced before its python3 runs.
  const expected = await Promise.all(toStage.map((plan) => plan.expected()));
  toStage.forEach((plan, i) => checkVerified(plan, expected[i], options, out));
  const failures: Failure[] = [];
  // One request: its error is the command's. A signal: nothing is kept.
  const settle = async <T extends { staging: string }>(
    jobs: { label: string; run: () => Promise<T> }[],
  ): Promise<{ label: string; value: T }[]> => {
    const results = await Promise.allSettled(jobs.map((j) => j.run()));
    const ok = results.flatMap((r, i) =>
      r.status === "fulfilled" ? [{ label: jobs[i].label, value: r.value }] : []
    );
    results.forEach((r, i) => {
      if (r.status === "rejected") failures.push({ spec: jobs[i].label, error: r.reason });
    });
    if (failures.length > 0 && (plans.length === 1 || signal.aborted)) {
      await Promise.all(ok.map(({ value }) => removeTree(value.staging)));
      throw signal.aborted ? signal.reason : failures[0].error;
    }
    return ok;
  };
  const extracted = await settle(toStage.map((plan, i) => ({
    label: plan.label,
    run: async () => ({
      plan,
      expected: expected[i],
      ...await stageWithRestarts(plan, expected[i]),
    }),
  })));
  // Every byte is read: the network goes before any interpreter from an archive runs.
  const revoked = await revokeNetwork();
  out.debug(`Revoked permissions: ${revoked.join(", ") || "none"}`);
  const inspected = await settle(extracted.map(({ label, value }) => ({
    label,
    run: async () => {
      const one = await inspectStaged(value, stageOptions(value.plan, value.expected));
      return { ...value, one, staging: one.staging };
    },
  })));
  const staged = inspected.map(({ label, value }) => ({
    spec: label,
    verified: value.expected.verified,
    build: value.plan.download?.build ?? "local",
    staged: value.one,
  }));
  const promoted = new Set<string>();
  let next = 0;
  try {
    for (; next < staged.length; next++) {
      const { spec, verified, build, staged: one } = staged[next];
      // Two sources of one key: the first is installed, the next ones are duplicates.
      const duplicate = promoted.has(one.info.key);
      promoted.add(one.info.key);
      const it = duplicate ? { ...one, alreadyInstalled: true } : one;
      try {
        outcomes.push(await finish(spec, verified, it, build, options, signal, out, revoked));
      } catch (err) {
        if (plans.length === 1 || signal.aborted) throw signal.aborted ? signal.reason : err;
        failures.push({ spec, error: err });
      }
    }
  } finally {
    // A failure or a signal in one source must not leave the others' staging behind.
    await Promise.all(staged.slice(next + 1).map(({ staged }) => removeTree(staged.staging)));
  }
  // Minor-version links move to the newest patch whether or not executables are linked.
  if (outcomes.some((o) => !o.foreign)) {
    for (const name of (await syncMinorDirs(dir)).blocked) {
      out.warn(
        `${dir}/${name} is not a link pyprime made; the minor-version link was not created`,
        "move it away and run pyprime install again to get a path that survives upgrades",
      );
    }
  }
  if (!options.noBin) await linkExecutables(dir, outcomes, options, out);
  return reportOutcomes(outcomes, failures, plans.map((p) => p.label), out);

  function stageOptions(plan: Plan, expected: Expected) {
    return {
      installDir: dir,
      sha256: expected.sha256,
      reinstall: options.reinstall,
      limits: options.limits,
      signal,
      foreign: plan.foreign ? plan.download : undefined,
      // A pack's name is a promise of what it holds, checked against its interpreter.
      expectKey: plan.download?.build === PACK_BUILD ? plan.download.key : undefined,
    };
  }

  async function stageWithRestarts(plan: Plan, expected: Expected): Promise<Extracted> {
    for (let attempt = 0;; attempt++) {
      const bar = out.bar(`Installing ${plan.download?.key ?? basename(plan.label)}`, 0, "bytes");
      try {
        const source = await plan.open(signal);
        if (source.size) bar.update(0, source.size);
        return await stageArchive(source, {
          ...stageOptions(plan, expected),
          onBytes: (n) => bar.update(n),
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

async function finish(
  spec: string,
  verified: Verification,
  staged: Staged,
  build: string,
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
    verified,
    format: staged.format,
    files: staged.extract.files,
    extractSeconds: round(staged.extractSeconds),
    revoked,
    build,
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
    // Written by pyprime, never taken from the archive: the tag upgrades compare.
    await writeOrigin(staged.staging, { build, sha256: staged.sha256 });
    await promote(staged);
    await commitQuietly(staged, out);
    out.info(
      `${replacing ? "Reinstalled" : "Installed"} ${info.key} in ${
        seconds(staged.extractSeconds + (bytecode?.seconds ?? 0))
      }`,
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

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
