/**
 * The entries of an installation in the order and with the metadata a reproducible
 * archive needs: depth first, each folder before its contents, names in byte order;
 * modes as installed; mtimes as installed but clamped to the newest source file's, so
 * what the install itself created (the `.pyc`, `__pycache__` folders, and the folders
 * whose mtime a new `__pycache__` changed) gets a time that depends only on the
 * archive it came from, like `tar --clamp-mtime`.
 *
 * @module
 */
import { join } from "node:path";
import { PyprimeError } from "../errors.ts";

/** One entry of the installation, relative to its root. */
export interface TreeEntry {
  /** Path relative to the installation root, `/`-separated; `""` is the root. */
  rel: string;
  /** What it is. */
  kind: "dir" | "file" | "symlink";
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** Whole seconds since the epoch, clamped. */
  mtime: number;
  /** File size in bytes (0 for others). */
  size: number;
  /** A symlink's target, as stored. */
  linkname?: string;
}

/** Options of {@link walkTree}. */
export interface WalkOptions {
  /** Names at the root that are left out (the bytecode record). */
  skipAtRoot?: ReadonlySet<string>;
  /** Upper bound of every mtime, in seconds (see {@link newestSource}). */
  clamp: number;
  /** Stops the walk. */
  signal?: AbortSignal;
}

const utf8 = new TextEncoder();

/** Byte order of UTF-8 names, what `tar --sort=name` and `LC_ALL=C ls` give. */
function byteOrder(a: string, b: string): number {
  const x = utf8.encode(a), y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

function fsError(path: string, err: unknown): PyprimeError {
  return new PyprimeError(`Cannot pack ${path}: ${(err as Error).message}`, { cause: err });
}

async function sortedNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (err) {
    throw fsError(dir, err);
  }
  return names.sort(byteOrder);
}

function seconds(info: Deno.FileInfo): number {
  return Math.floor((info.mtime?.getTime() ?? 0) / 1000);
}

/**
 * The newest mtime (whole seconds) of the regular files under `root` that the install
 * did not make (everything but `.pyc` files and the skipped root names).
 */
export async function newestSource(
  root: string,
  skipAtRoot: ReadonlySet<string> = new Set(),
): Promise<number> {
  let newest = 0;
  const walk = async (dir: string, top: boolean) => {
    for (const name of await sortedNames(dir)) {
      if (top && skipAtRoot.has(name)) continue;
      const path = join(dir, name);
      const info = await Deno.lstat(path).catch((err) => {
        throw fsError(path, err);
      });
      if (info.isDirectory) await walk(path, false);
      else if (info.isFile && !name.endsWith(".pyc")) newest = Math.max(newest, seconds(info));
    }
  };
  await walk(root, true);
  return newest;
}

/**
 * Yields the entries of the tree at `root`, root first. Files are not read here; a
 * socket, FIFO or device in the tree is refused: no PBS archive has one.
 */
export async function* walkTree(root: string, options: WalkOptions): AsyncGenerator<TreeEntry> {
  const entry = (rel: string, info: Deno.FileInfo, linkname?: string): TreeEntry => ({
    rel,
    kind: info.isDirectory ? "dir" : info.isSymlink ? "symlink" : "file",
    mode: (info.mode ?? (info.isDirectory ? 0o755 : 0o644)) & 0o7777,
    mtime: Math.min(seconds(info), options.clamp),
    size: info.isFile ? info.size : 0,
    linkname,
  });
  async function* walk(dir: string, rel: string): AsyncGenerator<TreeEntry> {
    for (const name of await sortedNames(dir)) {
      options.signal?.throwIfAborted();
      if (rel === "" && options.skipAtRoot?.has(name)) continue;
      const path = join(dir, name);
      const childRel = rel === "" ? name : `${rel}/${name}`;
      let info: Deno.FileInfo;
      try {
        info = await Deno.lstat(path);
      } catch (err) {
        throw fsError(path, err);
      }
      if (info.isSymlink) {
        yield entry(childRel, info, await Deno.readLink(path));
      } else if (info.isDirectory) {
        yield entry(childRel, info);
        yield* walk(path, childRel);
      } else if (info.isFile) {
        yield entry(childRel, info);
      } else {
        throw new PyprimeError(`Cannot pack ${path}: not a file, folder or symlink`, {
          hint: "remove it from the installation; archives carry only those",
        });
      }
    }
  }
  let top: Deno.FileInfo;
  try {
    top = await Deno.stat(root);
  } catch (err) {
    throw fsError(root, err);
  }
  yield entry("", top);
  yield* walk(root, "");
}
