/**
 * Minor-version directory links, as uv's "minor version directories": in the install
 * dir, `cpython-3.14-linux-x86_64-gnu` is a symlink to the newest installed 3.14 patch
 * of that variant and platform (`cpython-3.14.10-linux-x86_64-gnu`). Venvs,
 * Dockerfiles, services and the bin links use that path, so it survives upgrades. A
 * link is switched atomically (a new symlink renamed over the old one): a process
 * that resolved the old target keeps running from it.
 *
 * @module
 */
import { join } from "node:path";
import { compareKeys, installedKeys, KEY_PATTERN } from "./layout.ts";

/** A minor-version link name: `cpython-3.14[+variant]-os-arch-libc`. */
export const MINOR_DIR_PATTERN =
  /^cpython-(\d+)\.(\d+)(\+[a-z+]+)?-([a-z0-9_]+)-([a-z0-9_]+)-([a-z0-9_]+)$/;

/**
 * The minor-version link name of a key, or `undefined` for a name that is not a key.
 *
 * @example
 * ```ts
 * minorDirName("cpython-3.14.10+freethreaded-linux-x86_64-gnu"); // "cpython-3.14+freethreaded-linux-x86_64-gnu"
 * ```
 */
export function minorDirName(key: string): string | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  return `cpython-${m[1]}.${m[2]}${m[5] ?? ""}-${m[6]}-${m[7]}-${m[8]}`;
}

/** What {@link syncMinorDirs} did. */
export interface MinorDirReport {
  /** Links created or switched: link name → key. */
  linked: Record<string, string>;
  /** Links removed because no patch of their minor version is installed. */
  removed: string[];
  /** Names where something that is not a symlink stands: left alone, so not linked. */
  blocked: string[];
  /** Every minor-version link in place after the sync: link name → key. */
  current: Record<string, string>;
}

async function readLink(path: string): Promise<string | undefined> {
  try {
    return await Deno.readLink(path);
  } catch {
    return undefined;
  }
}

/**
 * Points every minor-version link of `installDir` at the newest installed patch, and
 * removes links whose minor version is gone. Only symlinks with a minor-link name are
 * touched: a real folder of that name is left alone.
 *
 * @example
 * ```ts
 * await syncMinorDirs("/opt/python"); // { linked: { "cpython-3.14-linux-x86_64-gnu": "cpython-3.14.10-…" }, removed: [] }
 * ```
 */
export async function syncMinorDirs(installDir: string): Promise<MinorDirReport> {
  const report: MinorDirReport = { linked: {}, removed: [], blocked: [], current: {} };
  if (!(await Deno.lstat(installDir).then((i) => i.isDirectory, () => false))) return report;
  const newest = new Map<string, string>();
  for (const key of (await installedKeys(installDir)).sort(compareKeys)) {
    // A folder with a key's name but no interpreter (emptied by hand, half copied)
    // is no patch to point at.
    const python = join(installDir, key, "bin", "python3");
    if (!(await Deno.lstat(python).then(() => true, () => false))) continue;
    newest.set(minorDirName(key)!, key); // ascending: the last one wins
  }
  for (const [name, key] of newest) {
    const path = join(installDir, name);
    const current = await readLink(path);
    if (current === key) {
      report.current[name] = key;
      continue;
    }
    if (current === undefined && await Deno.lstat(path).then(() => true, () => false)) {
      report.blocked.push(name);
      continue;
    }
    const temp = join(installDir, `.${name}.pyprime-${crypto.randomUUID().slice(0, 8)}`);
    // Relative, so the install dir can be moved or mounted elsewhere as a whole.
    await Deno.symlink(key, temp);
    try {
      await Deno.rename(temp, path);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw err;
    }
    report.linked[name] = key;
    report.current[name] = key;
  }
  for await (const entry of Deno.readDir(installDir)) {
    if (!entry.isSymlink || !MINOR_DIR_PATTERN.test(entry.name) || newest.has(entry.name)) continue;
    await Deno.remove(join(installDir, entry.name));
    report.removed.push(entry.name);
  }
  return report;
}
