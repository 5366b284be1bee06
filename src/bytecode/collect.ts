/**
 * Walks the compile roots and lists the `.py` sources to send to the workers.
 *
 * @module
 */
import { join } from "node:path";
import { CompileError, printable, refusedPath } from "../errors.ts";

/** A source to compile. */
export interface Source {
  path: string;
  size: number;
}

/** The sources found under the roots. */
export interface Collected {
  sources: Source[];
  /** Paths the line protocol cannot carry; reported as failures. */
  unsendable: string[];
  skipped: number;
  /** With `bytecode`: the `.pyc` files found (in `__pycache__` or beside the sources). */
  pycs: string[];
}

/**
 * Walks the roots; sync calls because they are several times cheaper than async ones
 * here. Sources in `current` (bytecode already found current) get size 0 unread.
 */
export function collectSources(
  roots: string[],
  exclude: RegExp[],
  bytecode = false,
  current?: ReadonlySet<string>,
): Collected {
  const out: Collected = { sources: [], unsendable: [], skipped: 0, pycs: [] };
  const seen = new Set<string>();
  const excluded = (path: string) => exclude.some((re) => path.search(re) >= 0);
  const add = (path: string, size: number) => {
    if (seen.has(path)) return;
    seen.add(path);
    if (path.includes("\n")) out.unsendable.push(path);
    else out.sources.push({ path, size });
  };
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch (err) {
      throw fsError(`Cannot list ${dir}`, err);
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) {
        if (entry.name === "__pycache__") {
          if (bytecode) listPycs(path, out.pycs);
          continue;
        }
        if (excluded(path + "/")) out.skipped++;
        else walk(path);
      } else if (bytecode && entry.name.endsWith(".pyc")) {
        out.pycs.push(path);
      } else if (entry.name.endsWith(".py")) {
        if (excluded(path) || !entry.isFile) out.skipped++;
        // Sizes order the work; a source known current is not sent, so no lstat.
        else add(path, current?.has(path) ? 0 : sizeOf(path));
      }
    }
  };
  for (const root of roots) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(root);
    } catch (err) {
      throw fsError(`Cannot compile ${root}`, err);
    }
    const path = join(root);
    if (info.isDirectory) {
      if (excluded(path.endsWith("/") ? path : path + "/")) out.skipped++;
      else walk(path);
    } else if (excluded(path)) out.skipped++;
    else add(path, info.size);
  }
  // Largest first: the big files start early and small ones fill the gaps at the end.
  out.sources.sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  return out;
}

function listPycs(dir: string, into: string[]): void {
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.name.endsWith(".pyc")) into.push(join(dir, entry.name));
    }
  } catch (err) {
    throw fsError(`Cannot list ${dir}`, err);
  }
}

/**
 * The `.pyc` of `pycs` that belong to none of `sources`: in `__pycache__`, a name
 * `<stem>.<tag>[.opt-N].pyc` whose `<stem>.py` is not a source; beside the sources, any
 * (CPython imports a lone `x.pyc` without a source, so one must never be trusted).
 */
export function orphanPycs(pycs: string[], sources: Iterable<string>): string[] {
  const known = new Set(sources);
  return pycs.filter((path) => {
    const slash = path.lastIndexOf("/");
    const dir = path.slice(0, slash);
    if (!dir.endsWith("/__pycache__")) return true;
    const name = path.slice(slash + 1);
    const parent = dir.slice(0, -"/__pycache__".length);
    // `a.cpython-312.opt-1.pyc` reads as stem `a` and as stem `a.cpython-312`.
    const stems = [/^(.+)\.[^.]+\.opt-[12]\.pyc$/, /^(.+)\.[^.]+\.pyc$/]
      .map((re) => re.exec(name)?.[1]);
    return !stems.some((stem) => stem !== undefined && known.has(`${parent}/${stem}.py`));
  });
}

/** Removes the `.pyc` no source owns (action `reuse`); returns how many. */
export function removeOrphans(pycs: string[], sources: Source[]): number {
  let removed = 0;
  for (const path of orphanPycs(pycs, sources.map((s) => s.path))) {
    try {
      Deno.removeSync(path);
      removed++;
    } catch (err) {
      // Already gone: a worker removed it as stale; it is not counted twice.
      if (err instanceof Deno.errors.NotFound) continue;
      throw new CompileError(`Cannot remove ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  return removed;
}

/** A CompileError for a failed filesystem call, explaining paths Deno refuses. */
function fsError(what: string, err: unknown): CompileError {
  const refused = refusedPath(err);
  if (refused) return new CompileError(refused.message, { hint: refused.hint, cause: err });
  return new CompileError(`${what}: ${(err as Error).message}`, { cause: err });
}

/** The size used to order work; a file that vanished is still sent, to be reported. */
function sizeOf(path: string): number {
  try {
    return Deno.lstatSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Refuses compile roots whose real path lies outside `realPath(confineTo)`: the roots
 * of an install come from its interpreter's answer, which the archive controls.
 *
 * @example
 * ```ts
 * confineRoots(["/opt/py/lib/python3.12"], "/opt/py");
 * ```
 */
export function confineRoots(roots: string[], confineTo: string): void {
  const base = Deno.realPathSync(confineTo);
  for (const root of roots) {
    let real: string;
    try {
      real = Deno.realPathSync(root);
    } catch {
      real = root;
    }
    if (real !== base && !real.startsWith(`${base}/`)) {
      throw new CompileError(
        `Refusing to compile ${printable(root)}: it resolves to ${
          printable(real)
        }, outside ${base}`,
        { hint: "the interpreter named a stdlib outside its installation" },
      );
    }
  }
}
