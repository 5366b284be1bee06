/**
 * Where installations live and how a PBS archive's entries map onto one.
 *
 * ```
 * <install-dir>/
 *   .lock                       held while a process changes the folder
 *   .staging/<random>/          an install being built; renamed into place when complete
 *   cpython-3.12.1-linux-x86_64-gnu/
 * ```
 *
 * @module
 */
import { join, resolve } from "node:path";
import { envValue as env } from "../env.ts";
import { ArchiveError, PyprimeError, refusedPath, UnsafeEntryError } from "../errors.ts";

/** Name of the folder of in-progress installs inside the install dir. */
export const STAGING_DIR = ".staging";
/** Name of the lock file inside the install dir. */
export const LOCK_FILE = ".lock";

/**
 * The install dir: `--install-dir`, else `PYPRIME_PYTHON_INSTALL_DIR`, else
 * `$XDG_DATA_HOME/pyprime/python`, else `~/.local/share/pyprime/python`.
 *
 * @example
 * ```ts
 * installDir(); // "/home/me/.local/share/pyprime/python"
 * ```
 */
export function installDir(flag?: string): string {
  if (flag === "") {
    // An empty --install-dir is a mistake (an unset shell variable), not "the default".
    throw new PyprimeError("--install-dir is empty", {
      exitCode: 2,
      hint: "pass a folder, or leave the option out to use the default",
    });
  }
  const chosen = flag ?? env("PYPRIME_PYTHON_INSTALL_DIR");
  if (chosen) return resolve(chosen);
  const xdg = env("XDG_DATA_HOME");
  if (xdg) return join(resolve(xdg), "pyprime", "python");
  const home = env("HOME");
  if (!home) {
    throw new PyprimeError("Cannot choose an install dir: HOME is not set", {
      hint: "pass --install-dir DIR or set PYPRIME_PYTHON_INSTALL_DIR",
    });
  }
  return join(resolve(home), ".local", "share", "pyprime", "python");
}

/** Full-layout metadata folders that never belong in an installation. */
const FULL_LAYOUT_EXTRAS = new Set(["PYTHON.json", "build", "licenses"]);

/**
 * Maps an archive entry of a PBS archive to its path inside the installation, or
 * `null` to skip it: `python/X` → `X` (install_only), `python/install/X` → `X`
 * (full), and the full layout's `python/build`, `python/licenses`,
 * `python/PYTHON.json` are skipped. Anything outside `python/` is not PBS.
 *
 * @example
 * ```ts
 * pbsEntryPath("python/bin/python3"); // "bin/python3"
 * pbsEntryPath("python/install/lib/libpython3.12.so"); // "lib/libpython3.12.so"
 * pbsEntryPath("python/build/Makefile"); // null
 * ```
 */
export function pbsEntryPath(name: string, label = "archive"): string | null {
  const parts = name.split("/");
  if (parts[0] !== "python") {
    throw new ArchiveError(
      `Cannot install ${label}: entry ${JSON.stringify(name)} is outside the python/ folder`,
      { hint: "pyprime installs python-build-standalone archives (install_only or full)" },
    );
  }
  if (parts.length === 1) return null;
  let rel: string;
  if (parts[1] === "install") {
    if (parts.length === 2) return null;
    rel = parts.slice(2).join("/");
  } else if (FULL_LAYOUT_EXTRAS.has(parts[1])) return null;
  else rel = parts.slice(1).join("/");
  if (VENV_CONFIGS.has(rel.replace(/\/+$/, "").toLowerCase())) {
    throw new UnsafeEntryError(
      name,
      "a pyvenv.cfg there would make the interpreter use another Python's files",
    );
  }
  return rel;
}

/**
 * Where CPython looks for `pyvenv.cfg` (next to the executable and one folder up):
 * one there could name any other Python as `home`, and its stdlib would be compiled.
 */
const VENV_CONFIGS = new Set(["pyvenv.cfg", "bin/pyvenv.cfg"]);

/** A uv-style installation key, e.g. `cpython-3.13.1+freethreaded-linux-x86_64-gnu`. */
export const KEY_PATTERN =
  /^cpython-(\d+)\.(\d+)\.(\d+)((?:a|b|rc)\d+)?(\+[a-z+]+)?-([a-z0-9_]+)-([a-z0-9_]+)-([a-z0-9_]+)$/;

/** True when `name` looks like an installation folder name. */
export function isInstallKey(name: string): boolean {
  return KEY_PATTERN.test(name);
}

/** Lists the installation keys present in `dir` (sorted), ignoring everything else. */
export async function installedKeys(dir: string): Promise<string[]> {
  const keys: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory && isInstallKey(entry.name)) keys.push(entry.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    const refused = refusedPath(err);
    if (refused) throw new PyprimeError(refused.message, { cause: err, hint: refused.hint });
    throw new PyprimeError(`Cannot read the install dir ${dir}: ${(err as Error).message}`, {
      cause: err,
      hint: "pass --install-dir DIR (or PYPRIME_PYTHON_INSTALL_DIR) naming a folder",
    });
  }
  return keys.sort(compareKeys);
}

/** Orders keys by version, newest last, then by name. */
export function compareKeys(a: string, b: string): number {
  const va = KEY_PATTERN.exec(a), vb = KEY_PATTERN.exec(b);
  if (va && vb) {
    for (const i of [1, 2, 3]) {
      const d = Number(va[i]) - Number(vb[i]);
      if (d !== 0) return d;
    }
    const pa = va[4] ?? "~", pb = vb[4] ?? "~"; // a final release sorts after its pre-releases
    if (pa !== pb) return pa < pb ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The interpreter of an installation folder (`bin/python3`). */
export function interpreterPath(installation: string): string {
  return join(installation, "bin", "python3");
}
