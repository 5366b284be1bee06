/**
 * The in-memory index of what one extraction has created, which replaces `lstat`
 * calls and decides which entry may take which path.
 *
 * @module
 */
import { UnsafeEntryError } from "../errors.ts";
import { displayName } from "./entry_policy.ts";

/** What the extraction created at a path inside the destination. */
export type PathKind = "file" | "dir" | "symlink";

/**
 * Everything this extraction created, by normalized relative path. The destination
 * starts empty, so this index is the whole truth about it and replaces `lstat`
 * calls; a directory is only recorded once all its parents are directories.
 *
 * @example
 * ```ts
 * const index = new PathIndex();
 * index.missingParents("a/b/c.py", "a/b/c.py"); // ["a", "a/b"]
 * ```
 */
export class PathIndex {
  readonly #kinds = new Map<string, PathKind>();
  readonly #sizes = new Map<string, number>();

  /** What exists at `path`, if anything. */
  kind(path: string): PathKind | undefined {
    return this.#kinds.get(path);
  }

  /** Size of the regular file at `path`, if it is one. */
  fileSize(path: string): number | undefined {
    return this.#sizes.get(path);
  }

  /**
   * Decides whether a `kind` entry may take `path`: nothing may replace a symbolic
   * link (it could be written through) and files and directories may not replace
   * each other. Returns "new" for a free path, "replace" when an earlier regular
   * file must be removed first (later entries win, as with tar) and "exists" for a
   * repeated directory.
   *
   * @throws {UnsafeEntryError} naming `entry` on a conflict.
   */
  claim(path: string, entry: string, kind: PathKind): "new" | "replace" | "exists" {
    const earlier = this.#kinds.get(path);
    if (earlier === undefined) return "new";
    if (earlier === "dir" && kind === "dir") return "exists";
    if (earlier === "file" && kind !== "dir") return "replace";
    const what = earlier === "symlink" ? "symbolic link" : earlier === "dir" ? "directory" : "file";
    throw new UnsafeEntryError(displayName(entry), `an earlier ${what} has the same path`);
  }

  /** Records a regular file (or a hard link to one) of `size` bytes. */
  addFile(path: string, size: number): void {
    this.#kinds.set(path, "file");
    this.#sizes.set(path, size);
  }

  /** Records a directory. */
  addDir(path: string): void {
    this.#kinds.set(path, "dir");
  }

  /** Records a symbolic link. */
  addSymlink(path: string): void {
    this.#kinds.set(path, "symlink");
    this.#sizes.delete(path);
  }

  /**
   * Returns the ancestors of `path` that do not exist yet, shallowest first, after
   * checking that none of the existing ones is a symbolic link or a file: nothing
   * is ever written through a link.
   *
   * @throws {UnsafeEntryError} naming `entry` when an ancestor is a link or a file.
   */
  missingParents(path: string, entry: string): string[] {
    const missing: string[] = [];
    let end = path.lastIndexOf("/");
    while (end > 0) {
      const parent = path.slice(0, end);
      const kind = this.#kinds.get(parent);
      // A recorded directory implies all its ancestors are directories.
      if (kind === "dir") break;
      if (kind === "symlink") {
        throw new UnsafeEntryError(
          displayName(entry),
          `its parent ${JSON.stringify(parent)} is a symbolic link`,
        );
      }
      if (kind === "file") {
        throw new UnsafeEntryError(
          displayName(entry),
          `its parent ${JSON.stringify(parent)} is a file`,
        );
      }
      missing.push(parent);
      end = parent.lastIndexOf("/");
    }
    return missing.reverse();
  }
}
