/**
 * The bytecode summary line that `install` and `compile` both print.
 *
 * @module
 */
import type { CompileReport } from "../bytecode/settings.ts";
import { printable } from "../errors.ts";
import type { Output } from "./output.ts";

/** Prints the one-line bytecode summary, and the failures with `--verbose`. */
export function summarizeCompile(report: CompileReport, out: Output): void {
  const failed = report.failed.length
    ? `, ${report.failed.length.toLocaleString("en-US")} failed`
    : "";
  out.info(
    `Bytecode compiled ${report.compiled.toLocaleString("en-US")} files in ${
      report.seconds.toFixed(2)
    }s${failed}`,
  );
  // Paths and messages come from the tree compiled: escaped so they print as inert text.
  for (const f of report.failed) out.debug(`  failed: ${printable(f.path)}: ${printable(f.error)}`);
}
