/**
 * What `install` reports: one outcome per request (installed, already there, or
 * failed), and the summary when some failed.
 *
 * @module
 */
import type { CompileReport } from "../bytecode/settings.ts";
import { PyprimeError } from "../errors.ts";
import { plural } from "./format.ts";
import type { Verification } from "../resolve/plan.ts";
import type { Output } from "./output.ts";

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
  /**
   * What the archive was checked against (absent when nothing was read): `option`
   * (`--sha256`), `catalog`, `sha256sums` (the SHA256SUMS beside it) or `none`.
   */
  verified?: Verification;
  /** Container format (absent when nothing was read). */
  format?: string;
  /** Files extracted. */
  files?: number;
  /** Seconds streaming and extracting. */
  extractSeconds?: number;
  /** Bytecode report, when compiled. */
  bytecode?: CompileReport;
  /** The PBS build tag of the archive, or `local`; absent when nothing was read. */
  build?: string;
  /** Permissions dropped before compiling. */
  revoked: string[];
  /** Installed for another platform (`--platform`): not probed, not compiled, not linked. */
  foreign?: boolean;
}

/** A request that could not be installed, while others of the same command were. */
export interface FailedOutcome {
  /** The source as given. */
  source: string;
  /** Always `failed`. */
  status: "failed";
  /** The error's message. */
  error: string;
}

/** A request that failed, with what it threw. */
export interface Failure {
  /** The request as given. */
  spec: string;
  /** What it threw. */
  error: unknown;
}

/**
 * Says every failure (in request order, in text and in `--json`) next to what was
 * installed: with several requests the ones that worked stay installed, as in uv.
 * Returns the exit code: 1 when any request failed.
 */
export function reportOutcomes(
  outcomes: InstallOutcome[],
  failures: Failure[],
  specs: string[],
  out: Output,
): number {
  for (const { spec, error } of failures) {
    const e = error instanceof PyprimeError ? error : undefined;
    out.error(`Cannot install ${spec}: ${(error as Error)?.message ?? String(error)}`, e?.hint);
  }
  if (failures.length > 0) {
    const done = outcomes.map((o) => o.source);
    out.info(
      `Installed ${plural(outcomes.length, "request")} of ${specs.length}${
        done.length ? ` (${done.join(", ")})` : ""
      }; failed: ${failures.map((f) => f.spec).join(", ")}`,
    );
  }
  const order = new Map(specs.map((spec, i) => [spec, i]));
  const all: (InstallOutcome | FailedOutcome)[] = [
    ...outcomes,
    ...failures.map((f): FailedOutcome => ({
      source: f.spec,
      status: "failed",
      error: (f.error as Error)?.message ?? String(f.error),
    })),
  ].sort((a, b) => (order.get(a.source) ?? 0) - (order.get(b.source) ?? 0));
  out.jsonData(all);
  return failures.length > 0 ? 1 : 0;
}
