/**
 * The check `pyprime pack` makes before writing anything: the installation was compiled
 * (it has a bytecode record) and every standard-library source has a current `.pyc`
 * for each level the record names, as its own interpreter judges them (the bytecode
 * workers' `verify` action). Sources that do not compile at all need none.
 *
 * @module
 */
import { compileTree } from "../bytecode/pool.ts";
import { BYTECODE_RECORD, readBytecodeRecord } from "../bytecode/record.ts";
import type { BytecodeRecord } from "../bytecode/record.ts";
import { PyprimeError } from "../errors.ts";

/** Options of {@link verifyCompiled}. */
export interface VerifyOptions {
  /** The installation root. */
  root: string;
  /** Its interpreter. */
  python: string;
  /** Its standard library folder. */
  stdlib: string;
  /** Worker count. */
  jobs?: number;
  /** Stops the check. */
  signal?: AbortSignal;
}

/** What {@link verifyCompiled} found: the record and how many sources it checked. */
export interface Verified {
  /** The installation's bytecode record. */
  record: BytecodeRecord;
  /** Sources checked. */
  files: number;
  /** Seconds the check took. */
  seconds: number;
}

/**
 * Refuses an installation that is not fully compiled, naming the first stale source.
 *
 * @throws {PyprimeError} with a hint to run `pyprime compile`
 */
export async function verifyCompiled(options: VerifyOptions): Promise<Verified> {
  const hint = `run \`pyprime compile ${options.root}\` first`;
  const record = await readBytecodeRecord(options.root);
  if (record === undefined) {
    throw new PyprimeError(
      `Cannot pack ${options.root}: it was not bytecode-compiled (no ${BYTECODE_RECORD})`,
      { hint },
    );
  }
  const report = await compileTree({
    python: options.python,
    confineTo: options.root,
    roots: [options.stdlib],
    optimize: record.optimize,
    invalidationMode: record.invalidationMode,
    exclude: record.exclude.map((source) => new RegExp(source)),
    jobs: options.jobs,
    signal: options.signal,
    action: "verify",
  });
  if (report.failed.length > 0) {
    const first = [...report.failed].sort((a, b) => (a.path < b.path ? -1 : 1))[0];
    const more = report.failed.length > 1 ? ` (and ${report.failed.length - 1} more)` : "";
    const level = /no current \.pyc for (optimize level \d)/.exec(first.error)?.[1];
    const why = level ? `has no current .pyc for ${level}` : `cannot be checked: ${first.error}`;
    throw new PyprimeError(`Cannot pack ${options.root}: ${first.path}${more} ${why}`, { hint });
  }
  return { record, files: report.files, seconds: report.seconds };
}
