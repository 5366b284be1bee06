/**
 * The pure half of the extraction policy: entry-name normalization, symbolic-link
 * target rules and the in-memory index of what this extraction has created. Nothing
 * here touches the file system, so every rule is unit-testable on its own;
 * `extract.ts` applies the decisions to disk.
 *
 * @module
 */
import type { TarHeader } from "modern-tar";
import { printable, UnsafeEntryError } from "../errors.ts";
import type { PathIndex } from "./path_index.ts";

export { PathIndex } from "./path_index.ts";

/** The limit names of `ExtractLimits`, used in messages and hints. */
export type LimitName = "maxTotalBytes" | "maxEntries" | "maxPathLength";

/** Longest entry name quoted in full in an error message. */
const DISPLAY_MAX = 300;

/** The command-line flag that raises each limit, named in the refusal's message. */
export const LIMIT_FLAGS: Readonly<Record<LimitName, string>> = {
  maxTotalBytes: "--max-unpacked-size",
  maxEntries: "--max-entries",
  maxPathLength: "--max-path-length",
};

/** The longest name of one path component Linux and macOS file systems take (NAME_MAX). */
const MAX_COMPONENT_BYTES = 255;

/**
 * Shortens a pathological entry name (e.g. a 400 kB PAX path) for error messages so
 * they stay one readable line, and escapes control characters (an ESC in a name must
 * not reach the terminal); ordinary names are returned unchanged.
 *
 * @example
 * ```ts
 * displayName("a/".repeat(1000)); // "a/a/a/…(2000 characters)"
 * ```
 */
export function displayName(name: string): string {
  if (name.length <= DISPLAY_MAX) return printable(name);
  return `${printable(name.slice(0, 200))}…(${name.length} characters)`;
}

/**
 * Number of bytes of `text` in UTF-8, without allocating.
 *
 * @example
 * ```ts
 * utf8Length("Ω.txt"); // 6
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else {
      // 3 bytes; a surrogate pair is 2 units and 4 bytes (a lone one encodes as U+FFFD).
      bytes += 2;
      const next = text.charCodeAt(i + 1);
      if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return bytes;
}

/**
 * Rejects entry types that are not a file, directory, symbolic or hard link
 * (devices, FIFOs) and GNU sparse files in their PAX forms.
 *
 * Limitation: `modern-tar` decodes unknown type flags (old GNU sparse `S`, volume
 * labels, ...) as regular files, so those arrive here as `file` and are extracted
 * as plain bytes: never outside the destination, but not rejected by name.
 *
 * @throws {UnsafeEntryError} naming the entry.
 */
export function checkEntryType(header: TarHeader): void {
  const type = header.type ?? "file";
  if (type !== "file" && type !== "directory" && type !== "symlink" && type !== "link") {
    throw new UnsafeEntryError(displayName(header.name), `${type} entries are not allowed`);
  }
  if (header.pax && Object.keys(header.pax).some((k) => k.startsWith("GNU.sparse."))) {
    throw new UnsafeEntryError(displayName(header.name), "GNU sparse files are not supported");
  }
}

/**
 * The mode of an extracted regular file, as Python's `tarfile` "data" filter (PEP 706)
 * sets it: setuid/setgid/sticky and group/other write cleared (nobody else may plant
 * code the installation imports), owner read and write always set, executable bits
 * kept, but group/other execute dropped when the owner has none.
 *
 * @example
 * ```ts
 * fileMode(0o4777); // 0o755
 * fileMode(0o666); // 0o644
 * ```
 */
export function fileMode(mode: number): number {
  let m = (mode & 0o755) | 0o600;
  if ((m & 0o100) === 0) m &= ~0o011;
  return m;
}

/**
 * The mode of an extracted directory: like {@link fileMode} (no group/other write, no
 * special bits) but at least u+rwx, so the installer can always write into it.
 *
 * @example
 * ```ts
 * dirMode(0o777); // 0o755
 * dirMode(0o555); // 0o755
 * ```
 */
export function dirMode(mode: number): number {
  return (mode & 0o755) | 0o700;
}

/**
 * The error for an entry that exceeds limit `limit`; the hint says how to proceed.
 *
 * @example
 * ```ts
 * throw limitError("a", "maxEntries", "the archive has more than 10 entries");
 * ```
 */
export function limitError(entry: string, limit: LimitName, rule: string): UnsafeEntryError {
  const flag = LIMIT_FLAGS[limit];
  return new UnsafeEntryError(displayName(entry), `${rule} (${flag})`, {
    hint: `if you trust this archive, raise the limit with ${flag}`,
  });
}

/**
 * Checks the UTF-8 length of `path` (an entry path or a link target) against `max`.
 *
 * @throws {UnsafeEntryError} naming `entry` and the maxPathLength limit.
 */
export function checkPathLength(entry: string, path: string, what: string, max: number): void {
  const bytes = utf8Length(path);
  if (bytes > max) {
    throw limitError(
      entry,
      "maxPathLength",
      `its ${what} is ${bytes} bytes long, over the limit of ${max}`,
    );
  }
  for (const part of path.split("/")) {
    if (part.length > MAX_COMPONENT_BYTES / 3 && utf8Length(part) > MAX_COMPONENT_BYTES) {
      throw new UnsafeEntryError(
        displayName(entry),
        `its ${what} has a component of ${
          utf8Length(part)
        } bytes, over the ${MAX_COMPONENT_BYTES} a file name may have`,
      );
    }
  }
}

/** C0 control characters and DEL: a name with one is refused. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\x01-\x1f\x7f]/;

/**
 * Normalizes an archive path (an entry name or a hard-link target) to a relative
 * path with no `.`/empty components and no leading `./` or trailing `/`. Returns
 * `""` for names that denote the destination itself (`./`, `.`); the caller decides
 * whether that is allowed. `entry` is the archive name reported on rejection and
 * `what` says which path is meant ("path", "hard link target").
 *
 * @throws {UnsafeEntryError} for NUL bytes, absolute paths and `..` components.
 * @example
 * ```ts
 * normalizeArchivePath("./python/bin/", "./python/bin/"); // "python/bin"
 * normalizeArchivePath("../etc/passwd", "../etc/passwd"); // throws UnsafeEntryError
 * ```
 */
export function normalizeArchivePath(path: string, entry: string, what = "path"): string {
  if (path.includes("\0")) {
    throw new UnsafeEntryError(displayName(entry), `${what} contains a NUL byte`);
  }
  if (CONTROL.test(path)) {
    throw new UnsafeEntryError(displayName(entry), `${what} contains a control character`);
  }
  if (path.startsWith("/")) throw new UnsafeEntryError(displayName(entry), `${what} is absolute`);
  // Fast path for the overwhelmingly common clean name.
  if (!path.includes("//") && !/(^|\/)\.\.?(\/|$)/.test(path)) {
    return path.endsWith("/") ? path.slice(0, -1) : path;
  }
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      throw new UnsafeEntryError(displayName(entry), `${what} contains a ".." component`);
    }
    parts.push(part);
  }
  return parts.join("/");
}

/**
 * The checked path under the destination of archive entry `name`, or null when the
 * entry is skipped (`mapName` returned null, or a directory entry for the
 * destination itself such as `./`). The mapped path is validated again, so
 * `mapName` cannot escape either.
 *
 * @throws {UnsafeEntryError} for unsafe or empty names and overlong paths.
 * @example
 * ```ts
 * entryPath("./python/bin/", true, (n) => n, 4096); // "python/bin"
 * ```
 */
export function entryPath(
  name: string,
  isDir: boolean,
  mapName: (name: string) => string | null,
  maxPathLength: number,
): string | null {
  const normalized = normalizeArchivePath(name, name);
  if (normalized === "") {
    if (isDir) return null;
    throw new UnsafeEntryError(displayName(name), "empty name");
  }
  const mapped = mapName(normalized);
  if (mapped === null) return null;
  const rel = normalizeArchivePath(mapped, name, "mapped path");
  if (rel === "") {
    if (isDir) return null;
    throw new UnsafeEntryError(displayName(name), "maps to an empty path");
  }
  checkPathLength(name, rel, "path", maxPathLength);
  return rel;
}

/**
 * Resolves hard link `entry` (to be created at `rel`) to its target under the
 * destination, through the same normalization and `mapName` as entry names. The
 * target must be a regular file this extraction already wrote.
 *
 * @throws {UnsafeEntryError} for unsafe, skipped, missing or non-file targets.
 */
export function hardLinkTarget(
  entry: string,
  rel: string,
  linkname: string,
  mapName: (name: string) => string | null,
  index: PathIndex,
): { target: string; size: number } {
  const reject = (rule: string) => new UnsafeEntryError(displayName(entry), rule);
  const normalized = normalizeArchivePath(linkname, entry, "hard link target");
  if (normalized === "") throw reject("hard link has an empty target");
  const mapped = mapName(normalized);
  if (mapped === null) throw reject(`hard link target ${JSON.stringify(linkname)} is skipped`);
  const target = normalizeArchivePath(mapped, entry, "mapped hard link target");
  const size = index.fileSize(target);
  if (size === undefined) {
    const kind = index.kind(target);
    const what = kind === "symlink"
      ? "is a symbolic link"
      : kind === "dir"
      ? "is a directory"
      : "was not extracted before it";
    throw reject(`hard link target ${JSON.stringify(linkname)} ${what}`);
  }
  if (target === rel) throw reject("hard link points to itself");
  return { target, size };
}

/**
 * Checks a symbolic link's target and returns it normalized.
 *
 * Why this form is enough: the target must be relative and, once normalized, look
 * like `(../)*name(/name)*`: `..` only at the start, at most as many of them as the
 * link's parent directory is deep inside the destination. Lexical checks alone can
 * be bypassed by chaining links (`d/l1 -> ..`, then `l2 -> d/l1/..`: each looks
 * harmless, but the second resolves `..` from the real target of `d/l1`, i.e.
 * above the destination). With this form there is never a `..` after a name, so a
 * link in the middle of a target is only ever descended into, never climbed out
 * of. Since the extraction never writes through a link (a link's parents are real
 * directories, so its lexical depth is its real depth), induction over resolution
 * steps shows every link resolves inside the destination: the leading `..`s stay
 * at or below the root, and each later name either is a real entry inside it or a
 * link that, by the same argument, resolves inside it.
 *
 * @param entry The link's archive name, for the error.
 * @param linkPath The link's normalized path relative to the destination.
 * @param target The link target as written in the archive.
 * @throws {UnsafeEntryError} when the target breaks the rule.
 * @example
 * ```ts
 * checkSymlinkTarget("python/bin/python", "python/bin/python", "python3.12"); // "python3.12"
 * checkSymlinkTarget("lib/x", "lib/x", "../../etc"); // throws: leaves the destination
 * ```
 */
export function checkSymlinkTarget(entry: string, linkPath: string, target: string): string {
  const reject = (rule: string) => new UnsafeEntryError(displayName(entry), rule);
  if (target === "") throw reject("symbolic link has an empty target");
  if (target.includes("\0")) throw reject("symbolic link target contains a NUL byte");
  if (CONTROL.test(target)) throw reject("symbolic link target contains a control character");
  if (target.startsWith("/")) {
    throw reject(`symbolic link target ${JSON.stringify(target)} is absolute`);
  }
  let ups = 0;
  const names: string[] = [];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") names.push(part);
    else if (names.length === 0) ups++;
    else throw reject(`symbolic link target ${JSON.stringify(target)} has ".." after a name`);
  }
  if (names.length === 0) {
    throw reject(`symbolic link target ${JSON.stringify(target)} names no file`);
  }
  const parentDepth = linkPath.split("/").length - 1;
  if (ups > parentDepth) {
    throw reject(`symbolic link target ${JSON.stringify(target)} leaves the installation`);
  }
  return "../".repeat(ups) + names.join("/");
}
