/**
 * The bytecode summary line that `install` and `compile` both print.
 *
 * @module
 */
import type { CompileReport } from "../bytecode/settings.ts";
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
  for (const f of report.failed) {
    if (failuresAreErrors) out.error(`Cannot compile ${f.path}: ${f.error}`);
    else out.debug(`  failed: ${f.path}: ${f.error}`);
  }
  const failed = report.failed.length
    ? `, ${report.failed.length.toLocaleString("en-US")} failed`
    : "";
  out.info(
    `Bytecode compiled ${plural(report.compiled, "file")} in ${seconds(report.seconds)}${failed}`,
  );
}
