/**
 * Executables in the bin dir: `python3.13` (and `python3.13t` for free-threaded
 * builds) point at the newest installed patch of that minor version, through its
 * minor-version link (`<install-dir>/cpython-3.13-linux-x86_64-gnu/bin/python3.13`,
 * see `minor_links.ts`); `--default` adds `python3` and `python`. A file pyprime did not create (anything that is not
 * a symlink into the install dir) is left alone unless forced.
 *
 * @module
 */
import { delimiter, join, relative, resolve, sep } from "node:path";
import { envValue } from "../env.ts";
import { PyprimeError } from "../errors.ts";
import { compareKeys, installedKeys, KEY_PATTERN } from "./layout.ts";
import { minorDirName, syncMinorDirs } from "./minor_links.ts";

/** The bin dir: `--bin-dir`, else `PYPRIME_PYTHON_BIN_DIR`, else `$XDG_BIN_HOME`, else `~/.local/bin`. */
export function binDir(flag?: string): string {
  if (flag === "") {
    throw new PyprimeError("--bin-dir is empty", {
      exitCode: 2,
      hint: "pass a folder, or leave the option out to use the default",
    });
  }
  const chosen = flag ?? envValue("PYPRIME_PYTHON_BIN_DIR") ?? envValue("XDG_BIN_HOME");
  if (chosen) return resolve(chosen);
  return join(envValue("HOME") ?? "/", ".local", "bin");
}

/** True when `dir` is one of the folders on `PATH`. */
export function onPath(dir: string): boolean {
  const path = Deno.env.get("PATH") ?? "";
  return path.split(delimiter).some((entry) => entry !== "" && resolve(entry) === resolve(dir));
}

/** The link name of a key's minor version: `python3.13`, `python3.13t`; none for debug builds. */
export function minorLinkName(key: string): string | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  const variant = m[5] ?? "";
  if (variant.includes("debug")) return undefined;
  return `python${m[1]}.${m[2]}${variant.includes("freethreaded") ? "t" : ""}`;
}

/**
 * Through the minor-version link, so the bin link survives patch upgrades; straight to
 * the patch when there is no such link for it (something else stands at its name).
 */
function executableOf(installDir: string, key: string, links: Record<string, string>): string {
  const m = KEY_PATTERN.exec(key)!;
  const t = (m[5] ?? "").includes("freethreaded") ? "t" : "";
  const minor = minorDirName(key)!;
  const folder = links[minor] === key ? minor : key;
  return join(installDir, folder, "bin", `python${m[1]}.${m[2]}${t}`);
}

/** The names of the links pyprime creates: `python`, `python3`, `python3.X`, `python3.Xt`. */
const MANAGED_NAME = /^python(3(\.\d+t?)?)?$/;

/** The platform part of a key: `linux-x86_64-gnu` of `cpython-3.12.1-linux-x86_64-gnu`. */
function platformOf(key: string): string {
  return key.split("-").slice(2).join("-");
}

/** What {@link syncLinks} did. */
export interface LinkReport {
  /** Links created or repointed: name → target. */
  linked: Record<string, string>;
  /** Links removed because nothing installed could replace them. */
  removed: string[];
  /** Names left alone because a file pyprime did not create is there. */
  skipped: string[];
}

/** Options of {@link syncLinks}. */
export interface SyncOptions {
  /** Keys just installed: their minor links are created. */
  installed?: string[];
  /** Also point `python3` and `python` at this key. */
  defaultKey?: string;
  /** Replace files pyprime did not create. */
  force?: boolean;
}

async function readLink(path: string): Promise<string | undefined> {
  try {
    return await Deno.readLink(path);
  } catch {
    return undefined;
  }
}

async function existsAny(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/**
 * Brings the bin dir in line with the installations: links of keys just installed
 * are created, links pyprime owns are repointed at the newest installed patch of
 * their minor version (`python3` and `python` too, once their installation is
 * gone), and owned links left with no installation are removed.
 *
 * @example
 * ```ts
 * await syncLinks(installDir, binDir(), { installed: ["cpython-3.13.1-linux-x86_64-gnu"] });
 * ```
 */
export async function syncLinks(
  installDir: string,
  bin: string,
  options: SyncOptions = {},
): Promise<LinkReport> {
  const { current } = await syncMinorDirs(installDir);
  const exe = (key: string) => executableOf(installDir, key, current);
  const keys = (await installedKeys(installDir)).sort(compareKeys);
  // Newest patch per link name and platform: an install for another machine in the
  // same dir (say aarch64) must not take over this machine's python3.12.
  const newest = new Map<string, string>();
  const slot = (name: string, key: string) => `${name} ${platformOf(key)}`;
  for (const key of keys) {
    const name = minorLinkName(key);
    if (name) newest.set(slot(name, key), key); // sorted ascending: the last one wins
  }
  const targetKey = (target: string | undefined) =>
    target?.startsWith(installDir + sep) ? relative(installDir, target).split(sep)[0] : undefined;
  const owned = async (name: string) => targetKey(await readLink(join(bin, name))) !== undefined;

  const wanted = new Map<string, string>();
  for (const key of options.installed ?? []) {
    const name = minorLinkName(key);
    if (name) wanted.set(name, exe(newest.get(slot(name, key))!));
  }
  for (const key of newest.values()) {
    const name = minorLinkName(key)!;
    if (wanted.has(name)) continue;
    const current = targetKey(await readLink(join(bin, name)));
    if (current !== undefined && platformOf(current) === platformOf(key)) {
      wanted.set(name, exe(key));
    }
  }
  if (options.defaultKey) {
    const target = exe(options.defaultKey);
    wanted.set("python3", target);
    wanted.set("python", target);
  }

  const report: LinkReport = { linked: {}, removed: [], skipped: [] };
  if (wanted.size > 0) await Deno.mkdir(bin, { recursive: true });
  for (const [name, target] of wanted) {
    const path = join(bin, name);
    const current = await readLink(path);
    if (current === target) continue;
    if (await existsAny(path) && !(await owned(name)) && !options.force) {
      report.skipped.push(name);
      continue;
    }
    await placeLink(bin, name, target);
    report.linked[name] = target;
  }
  // Owned links whose installation is gone (`python3`, `python`, or a minor link no
  // installed patch replaces): repointed at the newest patch of the same minor
  // version when one is installed, else removed.
  const entries = await Array.fromAsync(Deno.readDir(bin)).catch(() => []);
  for (const entry of entries) {
    // Only the names pyprime creates: a user's own link into an installation
    // (pip3.12, python3.12-config) is theirs to manage.
    if (!entry.isSymlink || wanted.has(entry.name) || !MANAGED_NAME.test(entry.name)) continue;
    const path = join(bin, entry.name);
    const target = await readLink(path);
    if (!target?.startsWith(installDir + sep) || await existsAny(target)) continue;
    const goneKey = relative(installDir, target).split(sep)[0];
    const minor = minorLinkName(goneKey);
    const replacement = minor === undefined ? undefined : newest.get(slot(minor, goneKey));
    if (replacement !== undefined) {
      const next = exe(replacement);
      await placeLink(bin, entry.name, next);
      report.linked[entry.name] = next;
    } else {
      await Deno.remove(path);
      report.removed.push(entry.name);
    }
  }
  return report;
}

/** Points `bin/name` at `target` atomically: a new link beside it, renamed over the name. */
async function placeLink(bin: string, name: string, target: string): Promise<void> {
  const temp = join(bin, `.${name}.pyprime-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.symlink(target, temp);
  try {
    await Deno.rename(temp, join(bin, name));
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}
