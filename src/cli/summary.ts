/**
 * The bytecode summary line that `install` and `compile` both print.
 *
 * @module
 */
import type { CompileReport } from "../bytecode/settings.ts";
import { printable } from "../errors.ts";
import { plural, seconds } from "./format.ts";
import type { Output } from "./output.ts";

/**
 * Prints the one-line bytecode summary. Each file that did not compile is listed:
 * as an error that even `--quiet` shows when `failuresAreErrors` (`pyprime compile`,
 * whose job is those files), else as a `--verbose` detail (`install`, where the
 * stdlib's deliberately broken test files are expected).
 */
export function summarizeCompile(
  report: CompileReport,
  out: Output,
  failuresAreErrors = false,
): void {
  // Paths and messages come from the tree compiled: escaped so they print as inert text.
  // A file the environment kept from being written (a full disk) is summed up once by
  // the caller, not listed a thousand times.
  for (const f of report.failed) {
    const line = `${printable(f.path)}: ${printable(f.error)}`;
    if (failuresAreErrors && !f.environment) out.error(`Cannot compile ${line}`);
    else out.debug(`  failed: ${line}`);
  }
  const failed = report.failed.length
    ? `, ${report.failed.length.toLocaleString("en-US")} failed`
    : "";
  // An archive that shipped bytecode (a pack): say how much of it was kept.
  const compiled = `compiled ${plural(report.compiled, "file")}`;
  const what = report.removed === undefined && !report.reused
    ? compiled
    : `reused ${report.reused.toLocaleString("en-US")}, ${compiled}`;
  out.info(`Bytecode ${what} in ${seconds(report.seconds)}${failed}`);
}
