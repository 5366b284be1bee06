/**
 * Finds the interpreter that owns a tree: `pyprime compile` without `--python`
 * compiles an installation with its own `bin/python3`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { CompileError, refusedPath } from "../errors.ts";
import { isDir, isFile, statOrUndefined } from "../fs.ts";

/**
 * Finds the interpreter of the installation that contains `path`: the nearest
 * ancestor (or `path` itself) holding `bin/python3` and a `lib/python3.*` folder.
 * The filesystem root is not considered: with a merged `/usr` it looks like an
 * installation, and a tree under no installation should not get the system Python.
 *
 * @example
 * ```ts
 * await findInterpreterFor("/opt/py/lib/python3.12/json"); // "/opt/py/bin/python3"
 * ```
 */
export async function findInterpreterFor(path: string): Promise<string | undefined> {
  try {
    return await search(path);
  } catch (err) {
    const refused = refusedPath(err);
    if (refused) throw new CompileError(refused.message, { hint: refused.hint, cause: err });
    throw err;
  }
}

async function search(path: string): Promise<string | undefined> {
  let dir = await absoluteDir(path);
  while (dir !== undefined) {
    const parent = join(dir, "..");
    if (parent === dir) return undefined;
    const candidate = join(dir, "bin", "python3");
    if (await isFile(candidate) && await hasStdlibDir(join(dir, "lib"))) return candidate;
    dir = parent;
  }
  return undefined;
}

async function absoluteDir(path: string): Promise<string | undefined> {
  const resolved = resolve(path);
  const info = await statOrUndefined(resolved);
  if (info === undefined) return undefined;
  return info.isDirectory ? resolved : join(resolved, "..");
}

async function hasStdlibDir(lib: string): Promise<boolean> {
  try {
    for await (const entry of Deno.readDir(lib)) {
      if (/^python3\.\d+t?$/.test(entry.name) && await isDir(join(lib, entry.name))) return true;
    }
  } catch {
    // no lib folder: not an installation
  }
  return false;
}

/**
 * The real path of `python`; with `confineTo`, refuses an interpreter whose real path
 * lies outside `realPath(confineTo)` (a `bin/python3` symlink out of an installation).
 *
 * @example
 * ```ts
 * await resolveInterpreter("/opt/py/.staging/x/bin/python3", "/opt/py/.staging/x");
 * ```
 */
export async function resolveInterpreter(python: string, confineTo?: string): Promise<string> {
  let real: string;
  try {
    real = await Deno.realPath(python);
  } catch (err) {
    throw new CompileError(`Cannot find interpreter ${python}: ${(err as Error).message}`, {
      cause: err,
      hint: "pass an existing python executable",
    });
  }
  if (confineTo === undefined) return real;
  let root: string;
  try {
    root = await Deno.realPath(confineTo);
  } catch (err) {
    throw new CompileError(`Cannot resolve ${confineTo}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!real.startsWith(root.endsWith("/") ? root : root + "/")) {
    throw new CompileError(
      `Refusing to run interpreter ${python}: it resolves to ${real}, outside ${root}`,
      { hint: "the installation's bin/python3 must not link outside the installation" },
    );
  }
  return real;
}
