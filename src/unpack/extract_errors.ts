/**
 * The errors of an extraction: a failed file-system step, or a failed read of the
 * tar stream, turned into pyprime's error classes with a hint.
 *
 * @module
 */
import { ArchiveError, PyprimeError, UnsafeEntryError } from "../errors.ts";
import { displayName } from "./entry_policy.ts";

/**
 * The error for a failed write of entry `entry` at `rel` under `dest`. An existing
 * path where the index says there is none can only be a name that the file system
 * folds onto an earlier one (case-insensitive or normalizing file systems): since
 * every create is exclusive, that is refused, never followed.
 *
 * @example
 * ```ts
 * writeError("/tmp/x", "python/A", "A", new Deno.errors.AlreadyExists("A")); // UnsafeEntryError
 * ```
 */
export function writeError(dest: string, entry: string, rel: string, error: unknown): Error {
  if (error instanceof PyprimeError) return error;
  if (error instanceof Deno.errors.AlreadyExists) {
    return new UnsafeEntryError(
      displayName(entry),
      "it collides with an earlier entry (the file system folds case or Unicode)",
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  if ((error as { code?: string }).code === "ENAMETOOLONG") {
    // Under the path limit, but the install dir's own path makes it too long for the OS.
    return new UnsafeEntryError(
      displayName(entry),
      `its path is too long for the file system under ${dest} (--max-path-length)`,
      { cause: error, hint: "use a shorter --install-dir, or lower --max-path-length" },
    );
  }
  return new PyprimeError(
    `Cannot write ${JSON.stringify(displayName(rel))} in ${dest}: ${message}`,
    { cause: error, hint: "check free disk space and the permissions of the folder" },
  );
}

/**
 * The error for a failed read of the archive `label` (a corrupt or truncated tar, an
 * upstream failure): an ArchiveError whose message starts with the cause's first line.
 *
 * @example
 * ```ts
 * readError("python.tar", new Error("Unexpected end of archive.")).message;
 * // "Cannot read python.tar: unexpected end of archive"
 * ```
 */
export function readError(label: string, error: unknown): Error {
  if (error instanceof PyprimeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const line = message.split("\n")[0].replace(/\.$/, "");
  const cause = /^[A-Z][a-z]/.test(line) ? line[0].toLowerCase() + line.slice(1) : line;
  return new ArchiveError(`Cannot read ${label}: ${cause}`, {
    cause: error,
    hint: "the archive is corrupt or incomplete; download it again",
  });
}
