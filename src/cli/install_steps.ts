/**
 * Steps of `pyprime install` around each staged archive: the verification warning or
 * refusal, compiling the staged stdlib, and keeping a verified download in the cache.
 *
 * @module
 */
import { compileTree } from "../bytecode/pool.ts";
import { removeBytecodeOf, writeBytecodeRecord } from "../bytecode/record.ts";
import { currentSources } from "../bytecode/shipped.ts";
import type { BytecodeSettings, CompileReport } from "../bytecode/settings.ts";
import { CompileError, PyprimeError } from "../errors.ts";
import type { Staged } from "../install/install.ts";
import type { Expected, Plan } from "../resolve/plan.ts";
import type { InstallCommandOptions } from "./install.ts";
import type { Output } from "./output.ts";
import { summarizeCompile } from "./summary.ts";

/**
 * A source with no digest to check: refused under `--require-hashes`, else one warning
 * (its `bin/python3` is about to run to probe it).
 */
export function checkVerified(
  plan: Plan,
  expected: Expected,
  options: InstallCommandOptions,
  out: Output,
): void {
  if (expected.verified !== "none") return;
  const how = plan.request.kind === "stdin"
    ? "pass --sha256 HEX with the digest of a trusted copy"
    : "pass --sha256 HEX with the digest of a trusted copy, or put the release's SHA256SUMS beside it";
  if (options.requireHashes) {
    throw new PyprimeError(
      `Refusing to install ${plan.label}: not verified (${expected.reason}) and hashes are required`,
      { hint: `${how}; or drop --require-hashes / PYPRIME_REQUIRE_HASHES` },
    );
  }
  out.warn(
    `${plan.label} is not verified (${expected.reason}); installing it runs its bin/python3`,
    `${how}; --require-hashes refuses unverified archives`,
  );
}

/** Keeps a verified download in the cache; a cache failure is only worth a warning. */
export async function commitQuietly(staged: Staged, out: Output): Promise<void> {
  await staged.source.commit?.().catch((err: Error) =>
    out.warn(`Cannot keep ${staged.source.label} in the cache: ${err.message}`)
  );
}

/** Compiles a staged installation's stdlib; failures name the final path, not staging. */
export async function compileStaged(
  staged: Staged,
  settings: BytecodeSettings,
  signal: AbortSignal,
  out: Output,
): Promise<CompileReport> {
  const bar = out.bar("Compiling bytecode", 0, "files");
  // What the user will look at is the final path, not the staging folder that is
  // renamed into it a moment later.
  const finalPath = (text: string) => text.replaceAll(`${staged.staging}/`, `${staged.target}/`);
  try {
    // The rewrite changed these sources after the pack was made; a same-length prefix
    // keeps their size and mtime, so a timestamp .pyc would look current: drop them.
    const reuse = [...staged.shipped.keys()].some((rel) => rel.endsWith(".pyc"));
    if (reuse) await removeBytecodeOf(staged.staging, staged.rewritten);
    // Sources whose shipped .pyc headers match them on disk need no worker.
    const current = reuse && staged.info.magic && staged.info.cache_tag
      ? currentSources(staged.shipped, {
        root: staged.staging,
        magic: staged.info.magic,
        tag: staged.info.cache_tag,
        levels: settings.optimize,
        changed: staged.rewritten,
      })
      : undefined;
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
      // A file that cannot be written (full disk, read-only) fails the install: the
      // staging folder goes, a previous installation stays as it was.
      stopOnEnvironmentError: true,
      signal,
      onProgress: (done, total) => bar.update(done, total),
      // A pack ships its bytecode: keep what is current, compile the rest.
      action: reuse ? "reuse" : "compile",
      current,
    }).catch((err) => {
      // A timeout or a full disk stops the install; its message names the final path too.
      if (!(err instanceof CompileError)) throw err;
      throw new CompileError(finalPath(err.message), { cause: err, hint: err.hint });
    });
    bar.stop();
    await writeBytecodeRecord(staged.staging, {
      optimize: settings.optimize,
      invalidationMode: settings.invalidationMode,
      exclude: settings.exclude.map((re) => re.source),
    });
    const final = {
      ...report,
      failed: report.failed.map((f) => ({ ...f, path: finalPath(f.path) })),
    };
    summarizeCompile(final, out);
    return final;
  } finally {
    bar.stop();
  }
}
