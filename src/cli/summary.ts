/**
 * The bytecode summary line that `install` and `compile` both print.
 *
 * @module
 */
import type { CompileReport } from "../bytecode/settings.ts";
import type { Output } from "./output.ts";

/** Prints the one-line bytecode summary, and the failures with `--verbose`. */
export function summarizeCompile(report: CompileReport, out: Output): void {
  const failed = report.failed.length
    ? `, ${report.failed.length.toLocaleString("en-US")} failed`
    : "";
  const compiled = `compiled ${report.compiled.toLocaleString("en-US")} files`;
  // An archive that shipped bytecode (a pack): say how much of it was kept.
  const what = report.removed === undefined
    ? compiled
    : `reused ${report.reused.toLocaleString("en-US")}, ${compiled}`;
  out.info(`Bytecode ${what} in ${report.seconds.toFixed(2)}s${failed}`);
  for (const f of report.failed) out.debug(`  failed: ${f.path}: ${f.error}`);
}
