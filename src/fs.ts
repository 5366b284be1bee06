/**
 * The file-system questions every stage asks: does a path exist, is it a file or a
 * folder. Missing and unreadable paths answer `false`; a path Deno refuses outright
 * (under `/dev`, `/proc`, `/sys`) throws, so the caller can explain it
 * ({@link refusedPath} in `errors.ts`).
 *
 * @module
 */
import { refusedPath } from "./errors.ts";

/**
 * `Deno.stat`, with `undefined` for a missing or unreadable path; a path Deno refuses
 * throws `Deno.errors.NotCapable`.
 *
 * @example
 * ```ts
 * (await statOrUndefined("/etc/hostname"))?.isFile; // true
 * ```
 */
export async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (refusedPath(err)) throw err;
    return undefined;
  }
}

/**
 * Whether `path` is a regular file (following symlinks).
 *
 * @example
 * ```ts
 * await isFile("/opt/py/bin/python3"); // true
 * ```
 */
export async function isFile(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isFile ?? false;
}

/**
 * Whether `path` is a folder (following symlinks).
 *
 * @example
 * ```ts
 * await isDir("/opt/py/lib"); // true
 * ```
 */
export async function isDir(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory ?? false;
}

/**
 * Whether anything, even a dangling symlink, is at `path`; errors other than "not
 * found" propagate.
 *
 * @example
 * ```ts
 * await exists("/opt/pythons/.lock"); // true once an install ran there
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Removes the file at `path`; a file already gone is not an error.
 *
 * @example
 * ```ts
 * await removeIfExists("/var/cache/pyprime/.x.part");
 * ```
 */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
