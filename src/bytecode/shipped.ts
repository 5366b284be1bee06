/**
 * The bytecode an archive ships, checked from what the extraction saw (each
 * `__pycache__/*.pyc`'s 16-byte header) and each source's stat. A source whose every
 * `.pyc` is this interpreter's and current in timestamp mode needs no worker at all;
 * anything else (hash-based `.pyc`, links, a foreign or stale `.pyc`, a header the
 * extraction did not see whole) is left to the worker's `reuse` check, which
 * removes what is stale. This is the check importlib itself makes before it trusts a
 * `.pyc`: magic number, flags, and the source's mtime and size.
 *
 * @module
 */

/** What the extraction noted of one `.py` or `.pyc` path (its last entry wins). */
export interface ShippedFile {
  /** `file` for a regular file; links are never found current. */
  kind: string;
  /** The first bytes, 16 when the extraction saw them whole. */
  head?: Uint8Array;
}

/** The interpreter and settings the shipped bytecode must match. */
export interface ShippedCheck {
  /** Absolute path the relative paths of the map are under. */
  root: string;
  /** `importlib.util.MAGIC_NUMBER` as 8 hex digits. */
  magic: string;
  /** `sys.implementation.cache_tag`, e.g. `cpython-312`. */
  tag: string;
  /** The optimization levels the install asks for: each must have a current `.pyc`. */
  levels: number[];
  /** Relative paths of sources changed after extraction (their `.pyc` are stale). */
  changed: string[];
  /**
   * Stats a source by absolute path; default `Deno.lstatSync`. The file system's word,
   * not the archive's: one with 32-bit times clamps an mtime after 2038.
   */
  stat?: (path: string) => SourceStat | undefined;
}

/**
 * Stems a `__pycache__` name belongs to as the worker's `_remove_foreign` reads it:
 * `<stem>.<x>.pyc`, `<stem>.<x>.opt-<y>.pyc`, and `<stem>.pyc` itself.
 */
function stemsOf(name: string): string[] {
  const base = name.slice(0, -".pyc".length);
  const out = [base];
  const dot = base.lastIndexOf(".");
  if (dot > 0) out.push(base.slice(0, dot));
  const opt = /^(.+)\.[^.]+\.opt-[^.]*$/.exec(base);
  if (opt) out.push(opt[1]);
  return out;
}

/** What importlib compares a `.pyc` header with: the source's stat on disk. */
export interface SourceStat {
  mtime: Date | null;
  size: number;
}

function lstat(path: string): SourceStat | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Whether a `.pyc` header is current in timestamp mode for a source with stat `st`. */
function currentHeader(head: Uint8Array, magic: string, st: SourceStat | undefined): boolean {
  if (head.length < 16 || !st?.mtime) return false;
  const seconds = st.mtime.getTime() / 1000;
  if (!(seconds >= 0) || seconds > 0xFFFFFFFF) return false;
  const view = new DataView(head.buffer, head.byteOffset, 16);
  let hex = "";
  for (let i = 0; i < 4; i++) hex += head[i].toString(16).padStart(2, "0");
  return hex === magic && view.getUint32(4, true) === 0 &&
    view.getUint32(8, true) === Math.trunc(seconds) &&
    view.getUint32(12, true) === st.size % 2 ** 32;
}

/**
 * The absolute paths of the shipped sources whose bytecode is current: every level of
 * `check.levels` has its `.pyc`, and every `.pyc` of the source in its `__pycache__`
 * is this interpreter's (`check.tag`), a regular file, and current. Returns an empty
 * set when the magic number or tag is not well formed.
 *
 * @example
 * ```ts
 * const current = currentSources(shipped, {
 *   root: "/opt/py", magic: "cb0d0d0a", tag: "cpython-312", levels: [0], changed: [],
 * });
 * ```
 */
export function currentSources(
  shipped: ReadonlyMap<string, ShippedFile>,
  check: ShippedCheck,
): Set<string> {
  const current = new Set<string>();
  if (!/^[0-9a-f]{8}$/.test(check.magic) || !/^[A-Za-z0-9_-]+$/.test(check.tag)) return current;
  /** `dir/stem` → the names in `dir/__pycache__` that belong to that stem. */
  const owned = new Map<string, string[]>();
  for (const rel of shipped.keys()) {
    const slash = rel.lastIndexOf("/");
    if (!rel.endsWith(".pyc") || !rel.slice(0, slash + 1).endsWith("__pycache__/")) continue;
    const parent = rel.slice(0, slash - "__pycache__".length);
    const name = rel.slice(slash + 1);
    for (const stem of stemsOf(name)) {
      const key = parent + stem;
      owned.get(key)?.push(name) ?? owned.set(key, [name]);
    }
  }
  const changed = new Set(check.changed);
  const stat = check.stat ?? lstat;
  for (const [rel, source] of shipped) {
    if (!rel.endsWith(".py") || source.kind !== "file" || changed.has(rel)) continue;
    const slash = rel.lastIndexOf("/");
    const stem = rel.slice(slash + 1, -".py".length);
    const cache = `${rel.slice(0, slash + 1)}__pycache__/`;
    const own = (level: number) => `${stem}.${check.tag}${level ? `.opt-${level}` : ""}.pyc`;
    const names = owned.get(rel.slice(0, -".py".length)) ?? [];
    if (!check.levels.every((level) => names.includes(own(level)))) continue;
    if (!names.every((name) => [0, 1, 2].some((level) => own(level) === name))) continue;
    const path = `${check.root}/${rel}`;
    const st = stat(path);
    const ok = names.every((name) => {
      const pyc = shipped.get(cache + name);
      return pyc?.kind === "file" && pyc.head !== undefined &&
        currentHeader(pyc.head, check.magic, st);
    });
    if (ok) current.add(path);
  }
  return current;
}
