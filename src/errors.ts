/**
 * The few error classes that callers catch. Every one carries the exit code the
 * top-level formatter in `main.ts` uses and an optional `hint` that says what to do.
 *
 * @module
 */

/** Options shared by every pyprime error. */
export interface PyprimeErrorOptions {
  /** The low-level error this one explains; `--verbose` prints the chain. */
  cause?: unknown;
  /** One line that tells the user what to do next. */
  hint?: string;
  /** Process exit code; defaults to 1. */
  exitCode?: number;
}

/**
 * Base class of every error pyprime expects and reports as one line.
 *
 * @example Throwing with a hint
 * ```ts
 * throw new PyprimeError("Cannot read \"x.tar.gz\": not found", { hint: "check the path" });
 * ```
 */
export class PyprimeError extends Error {
  /** Process exit code for this error. */
  readonly exitCode: number;
  /** What the user can do about it, printed as a `hint:` line. */
  readonly hint?: string;

  /** Creates an error with a one-line message. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "PyprimeError";
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }
}

/**
 * An archive entry that breaks the extraction policy (path traversal, links that
 * leave the installation, special files, limits).
 *
 * @example
 * ```ts
 * throw new UnsafeEntryError("python/../x", "path leaves the installation");
 * ```
 */
export class UnsafeEntryError extends PyprimeError {
  /** The entry's path as written in the archive. */
  readonly entry: string;
  /** The rule it broke, in words. */
  readonly rule: string;

  /** Creates the error for `entry` breaking `rule`. */
  constructor(entry: string, rule: string, options: PyprimeErrorOptions = {}) {
    // Names and rules come from the archive: escaped so they print as inert text.
    super(`Cannot extract "${printable(entry).replace(/"/g, '\\"')}": ${printable(rule)}`, {
      hint: "the archive is unsafe or corrupt; get it again from a trusted source",
      ...options,
    });
    this.name = "UnsafeEntryError";
    this.entry = entry;
    this.rule = rule;
  }
}

/**
 * The archive's sha256 differs from the expected one.
 *
 * @example
 * ```ts
 * throw new ChecksumMismatchError("a.tar.gz", "00…", "ff…");
 * ```
 */
export class ChecksumMismatchError extends PyprimeError {
  /** The digest the user or the catalog promised, lowercase hex. */
  readonly expected: string;
  /** The digest of the bytes actually read, lowercase hex. */
  readonly actual: string;

  /** Creates the error for `source`. */
  constructor(source: string, expected: string, actual: string, options: PyprimeErrorOptions = {}) {
    super(
      `Checksum mismatch for ${source}: expected sha256 ${expected}, got ${actual}`,
      { hint: "the download is corrupt or was tampered with; nothing was installed", ...options },
    );
    this.name = "ChecksumMismatchError";
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * An archive that cannot be read: truncated, a bad gzip CRC, a corrupt zstd frame,
 * a bad tar header, or not a python-build-standalone layout.
 */
export class ArchiveError extends PyprimeError {
  /** Creates the error; `message` names the archive and the cause. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(printable(message), options);
    this.name = "ArchiveError";
  }
}

/** The run was interrupted by a signal; exit code is 128 + the signal number. */
export class InterruptedError extends PyprimeError {
  /** The signal that stopped the run. */
  readonly signal: Deno.Signal;

  /** Creates the error for `signal` (SIGINT → 130, SIGTERM → 143). */
  constructor(signal: Deno.Signal) {
    super(`Interrupted by ${signal}`, { exitCode: signal === "SIGINT" ? 130 : 143 });
    this.name = "InterruptedError";
    this.signal = signal;
  }
}

/**
 * Standard output was closed by its reader (`pyprime list | head -1`): like a tool
 * killed by SIGPIPE, the run ends quietly with exit code 141.
 */
export class BrokenPipeError extends PyprimeError {
  /** Creates the error. */
  constructor(options: PyprimeErrorOptions = {}) {
    super("standard output was closed", { exitCode: 141, ...options });
    this.name = "BrokenPipeError";
  }
}

/** Bytecode compilation failed as a whole: a worker crashed or a file timed out. */
export class CompileError extends PyprimeError {
  /** Creates the error. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(message, options);
    this.name = "CompileError";
  }
}

/**
 * Explains Deno's refusal of a path: pyprime runs with read and write access to every
 * path, but Deno keeps `/dev`, `/proc` and `/sys` for `--allow-all`, and its message
 * ("run again with the --allow-all flag") names a flag a user of the binary cannot
 * pass. Returns a one-line message and hint, or `undefined` for any other error.
 *
 * @example
 * ```ts
 * refusedPath(new Deno.errors.NotCapable('Requires all access to "/dev/shm/x"'));
 * // { message: "Deno does not let pyprime use /dev/shm/x", hint: "…" }
 * ```
 */
export function refusedPath(error: unknown): { message: string; hint: string } | undefined {
  if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  const path = /Requires all access to "([^"]*)"/.exec(error.message)?.[1];
  if (path === undefined) return undefined;
  return {
    message: `Deno does not let pyprime use ${path}`,
    hint: "paths under /dev, /proc and /sys are off limits; use a folder elsewhere",
  };
}

/** Formats `error` and its `cause` chain as lines, innermost last. */
export function causeChain(error: unknown): string[] {
  const lines: string[] = [];
  let current: unknown = error instanceof Error ? error.cause : undefined;
  while (current !== undefined && lines.length < 10) {
    lines.push(current instanceof Error ? `${current.name}: ${current.message}` : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines;
}

/**
 * Escapes the characters that would act on a terminal when printed (C0 and C1 control
 * characters, DEL, bidirectional and invisible format characters) as `\xNN`/`\uNNNN`,
 * so a name from an archive or an interpreter's output prints as inert text.
 *
 * @example
 * ```ts
 * printable("a\x1b[2Jb"); // "a\\x1b[2Jb"
 * ```
 */
export function printable(text: string): string {
  return text.replace(NON_PRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

// deno-lint-ignore no-control-regex
const NON_PRINTABLE = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
