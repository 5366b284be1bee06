/**
 * The last step of `pyprime install`: link `python3.X` (and with `--default`
 * `python3`/`python`) in the bin dir for what was installed.
 *
 * @module
 */
import { binDir, onPath, syncLinks } from "../install/bin_links.ts";
import type { InstallCommandOptions } from "./install.ts";
import type { InstallOutcome } from "./install_outcomes.ts";
import type { Output } from "./output.ts";

/** Links the executables of `outcomes`; a failure is a warning, the install stands. */
export async function linkExecutables(
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
