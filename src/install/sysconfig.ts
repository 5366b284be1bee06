/**
 * Rewrites the build-time prefix python-build-standalone bakes into an installation.
 *
 * PBS builds CPython with `--prefix=/install` and a clang toolchain of its own, so
 * `sysconfig.get_config_vars()` of a fresh archive names `/install/...` paths and
 * `clang`/`llvm-ar`, and the pkg-config files say `prefix=/install`. Tools that build C
 * extensions (setuptools, meson-python, pkg-config users) read those values. This module
 * does what uv does (`crates/uv-python/src/sysconfig`, itself after bluss's
 * sysconfigpatcher):
 *
 * - in `lib/pythonX.Y/_sysconfigdata_*.py` (and 3.14's `_sysconfig_vars_*.json`), every
 *   whitespace-separated word of a string value that is `/install` or starts with
 *   `/install/` gets the final prefix; `-isysroot <sdk>` pairs are dropped; the compiler
 *   variables (`CC`, `CXX`, `BLDSHARED`, `LDSHARED`, `LDCXXSHARED`, `LINKCC`) get `cc`/`c++`
 *   instead of PBS's `clang`/cross gcc; `AR` becomes `ar`; `PYTHON_BUILD_STANDALONE = 1`
 *   marks a rewritten file;
 * - in `lib/pkgconfig/*.pc`, `name=/install[/…]` variable lines become
 *   `name=${pcfiledir}/../..[/…]`, which stays right if the installation moves.
 *
 * Only the string literals that change are replaced in the Python file, so everything
 * else (comments, formatting, other values) stays byte for byte.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { ArchiveError, PyprimeError } from "../errors.ts";
import { LiteralSyntaxError, parseBuildTimeVars, pythonString } from "./python_literal.ts";

/** The prefix PBS archives are built with. */
export const BUILD_PREFIX = "/install";

/** The largest sysconfig, JSON or `.pc` file rewritten; PBS's are under 100 KiB. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** The key uv adds so tools can tell a patched standalone build. */
const STANDALONE_KEY = "PYTHON_BUILD_STANDALONE";

/** One replacement rule of a config variable: a whole word, or the whole value. */
interface Replacement {
  /** The word to replace; absent means the whole value is replaced. */
  from?: string;
  to: string;
}

const CROSS_ARCHES = [
  "arm-linux-gnueabi",
  "arm-linux-gnueabihf",
  "loongarch64-linux-gnu",
  "mips-linux-gnu",
  "mipsel-linux-gnu",
  "powerpc64le-linux-gnu",
  "riscv64-linux-gnu",
  "s390x-linux-gnu",
  "x86_64-linux-gnu",
];

const C_COMPILER: Replacement[] = [
  ...CROSS_ARCHES.map((arch) => ({ from: `/usr/bin/${arch}-gcc`, to: "cc" })),
  { from: "clang", to: "cc" },
  { from: "musl-clang", to: "cc" },
];

const CXX_COMPILER: Replacement[] = [
  ...CROSS_ARCHES.map((arch) => ({ from: `/usr/bin/${arch}-g++`, to: "c++" })),
  { from: "clang++", to: "c++" },
];

/**
 * Per-variable replacements, as in uv's `generated_mappings.rs` (generated from PBS's
 * `targets.yml`): the toolchain PBS builds with does not exist on the user's machine.
 */
const REPLACEMENTS: Record<string, Replacement[]> = {
  AR: [{ to: "ar" }],
  BLDSHARED: C_COMPILER,
  CC: C_COMPILER,
  CXX: CXX_COMPILER,
  LDCXXSHARED: CXX_COMPILER,
  LDSHARED: C_COMPILER,
  LINKCC: C_COMPILER,
};

/** Applies `fn` to each whitespace-separated word, keeping the whitespace as it was. */
function mapWords(value: string, fn: (word: string) => string): string {
  return value.split(/(\s+)/).map((part, i) => (i % 2 === 0 && part ? fn(part) : part)).join("");
}

function replacePrefix(value: string, finalPrefix: string): string {
  return mapWords(value, (word) => {
    // Already final: only possible when the final prefix is itself under /install, and
    // rewriting it again would break idempotence.
    if (word === finalPrefix || word.startsWith(`${finalPrefix}/`)) return word;
    if (word === BUILD_PREFIX) return finalPrefix;
    if (!word.startsWith(`${BUILD_PREFIX}/`)) return word;
    const rest = word.slice(BUILD_PREFIX.length);
    return finalPrefix === "/" ? rest : finalPrefix + rest;
  });
}

/** Drops `-isysroot <sdk>`: the macOS SDK path of the build machine. */
function removeIsysroot(value: string): string {
  const words = value.split(/\s+/).filter(Boolean);
  const at = words.indexOf("-isysroot");
  if (at === -1) return value;
  const kept = words.filter((_, i) => {
    if (words[i] === "-isysroot") return false;
    return !(i > 0 && words[i - 1] === "-isysroot");
  });
  return kept.join(" ");
}

/**
 * Returns the patched value of one sysconfig variable.
 *
 * @example
 * ```ts
 * patchConfigValue("BINDIR", "/install/bin", "/opt/py"); // "/opt/py/bin"
 * patchConfigValue("CC", "clang -pthread", "/opt/py"); // "cc -pthread"
 * ```
 */
export function patchConfigValue(key: string, value: string, finalPrefix: string): string {
  let patched = removeIsysroot(replacePrefix(value, normalizePrefix(finalPrefix)));
  for (const rule of REPLACEMENTS[key] ?? []) {
    patched = rule.from === undefined
      ? rule.to
      : mapWords(patched, (word) => (word === rule.from ? rule.to : word));
  }
  return patched;
}

function normalizePrefix(prefix: string): string {
  if (!isAbsolute(prefix)) throw new TypeError(`The final prefix must be absolute, got ${prefix}`);
  return prefix.length > 1 ? prefix.replace(/\/+$/, "") || "/" : prefix;
}

/**
 * Patches the text of a `_sysconfigdata_*.py` module; returns it unchanged when there is
 * nothing to do. Only the changed string values are rewritten.
 *
 * @throws {SyntaxError} when `build_time_vars` is not a plain dict literal
 *
 * @example
 * ```ts
 * const src = "build_time_vars = {'BINDIR': '/install/bin', 'CC': 'clang -pthread'}\n";
 * patchSysconfigData(src, "/opt/py");
 * // "build_time_vars = {'BINDIR': '/opt/py/bin', 'CC': 'cc -pthread',\n 'PYTHON_BUILD_STANDALONE': 1}\n"
 * ```
 */
export function patchSysconfigData(text: string, finalPrefix: string): string {
  const { items, open } = parseBuildTimeVars(text);
  const edits: { start: number; end: number; text: string }[] = [];
  for (const item of items) {
    if (typeof item.value !== "string") continue;
    const patched = patchConfigValue(item.key, item.value, finalPrefix);
    if (patched !== item.value) {
      edits.push({ start: item.start, end: item.end, text: pythonString(patched) });
    }
  }
  if (edits.length === 0) return text;
  if (!items.some((i) => i.key === STANDALONE_KEY)) {
    const last = items.at(-1);
    const entry = `${pythonString(STANDALONE_KEY)}: 1`;
    const at = last ? last.end : open;
    edits.push({ start: at, end: at, text: last ? `,\n${last.indent}${entry}` : entry });
  }
  // One pass over the edits in order: slicing the result once per edit is quadratic.
  const parts: string[] = [];
  let at = 0;
  for (const e of edits.sort((a, b) => a.start - b.start)) {
    parts.push(text.slice(at, e.start), e.text);
    at = e.end;
  }
  parts.push(text.slice(at));
  return parts.join("");
}

/**
 * Patches the text of a `.pc` file: `name=/install[/…]` lines become relative to the
 * `.pc` file (`${pcfiledir}/../..` is the installation root, from `lib/pkgconfig/`).
 *
 * @example
 * ```ts
 * patchPkgconfig("prefix=/install\nlibdir=${prefix}/lib\n");
 * // "prefix=${pcfiledir}/../..\nlibdir=${prefix}/lib\n"
 * ```
 */
export function patchPkgconfig(text: string): string {
  return text.replace(
    /^([A-Za-z_][\w.]*)=\/install(\/[^\r\n]*)?(?=\r?$)/gm,
    (_m, name: string, rest = "") => `${name}=\${pcfiledir}/../..${rest}`,
  );
}

function patchSysconfigVarsJson(text: string, finalPrefix: string): string {
  const vars: Record<string, unknown> = JSON.parse(text);
  let changed = false;
  for (const [key, value] of Object.entries(vars)) {
    if (typeof value !== "string") continue;
    const patched = patchConfigValue(key, value, finalPrefix);
    if (patched !== value) {
      vars[key] = patched;
      changed = true;
    }
  }
  return changed ? JSON.stringify(vars, null, 2) + "\n" : text;
}

// ---------------------------------------------------------------------------------------
// Files.

async function regularFiles(dir: string, match: (name: string) => boolean): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      // A symlink could point outside the installation; PBS ships these as plain files.
      if (e.isFile && match(e.name)) names.push(e.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
  return names.sort();
}

/**
 * Replaces `path` atomically, keeping its permission bits and its archive mtime: the
 * timestamp-mode .pyc of the rewritten module then depends only on the archive and the
 * install path, so two installs of one archive give byte-identical bytecode.
 */
async function replaceFile(path: string, text: string): Promise<void> {
  const { mode, mtime, atime } = await Deno.stat(path);
  const tmp = `${path}.pyprime-${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, text);
    if (mode !== null) await Deno.chmod(tmp, mode & 0o7777);
    if (mtime !== null) await Deno.utime(tmp, atime ?? mtime, mtime);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

type Patcher = (text: string, finalPrefix: string) => string;

async function patchFile(
  root: string,
  rel: string,
  patch: Patcher,
  finalPrefix: string,
): Promise<boolean> {
  const path = join(root, rel);
  await checkSize(root, rel);
  const text = await Deno.readTextFile(path);
  let patched: string;
  try {
    patched = patch(text, finalPrefix);
  } catch (err) {
    if (!(err instanceof LiteralSyntaxError || err instanceof SyntaxError)) throw err;
    throw new ArchiveError(`Cannot rewrite ${JSON.stringify(rel)}: ${err.message}`, {
      cause: err,
      hint: "the archive's sysconfig data is not in the expected format; report it",
    });
  }
  if (patched === text) return false;
  await replaceFile(path, patched).catch((err) => {
    throw new PyprimeError(`Cannot rewrite ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: "check free disk space and the permissions of the install dir",
    });
  });
  return true;
}

/**
 * Rewrites the build prefix of a PBS installation extracted at `root` so it names
 * `finalPrefix`, the folder the installation will finally live in. Call it before the
 * bytecode of the stdlib is compiled (the rewritten module keeps its mtime but changes size).
 *
 * Idempotent; files that are missing or need no change are left alone.
 *
 * @param root the extracted installation (the folder holding `bin/` and `lib/`)
 * @param finalPrefix absolute path of the installation after it is moved into place
 * @returns the changed files, relative to `root`, sorted
 * @throws {ArchiveError} when a sysconfig file is not the literal PBS writes
 *
 * @example
 * ```ts
 * const changed = await rewriteSysconfig(staging, "/home/me/.local/share/pyprime/python/cpython-3.12.1-linux-x86_64-gnu");
 * // ["lib/pkgconfig/python-3.12.pc", "lib/python3.12/_sysconfigdata__linux_x86_64-linux-gnu.py", …]
 * ```
 */
export async function rewriteSysconfig(root: string, finalPrefix: string): Promise<string[]> {
  normalizePrefix(finalPrefix);
  const changed: string[] = [];
  for (const { rel, patch } of await configFiles(root)) {
    if (await patchFile(root, rel, patch, finalPrefix)) changed.push(rel);
  }
  return changed.sort();
}

/**
 * Refuses a sysconfig, JSON or `.pc` file over {@link MAX_CONFIG_BYTES} before
 * anything reads it (the interpreter's probe loads `_sysconfigdata` too).
 *
 * @throws {ArchiveError} naming the file.
 */
export async function checkConfigSizes(root: string): Promise<void> {
  for (const { rel } of await configFiles(root)) await checkSize(root, rel);
}

/** The files {@link rewriteSysconfig} patches, relative to `root`, and how. */
async function configFiles(root: string): Promise<{ rel: string; patch: Patcher }[]> {
  const out: { rel: string; patch: Patcher }[] = [];
  const libs = await regularDirs(join(root, "lib"), (n) => /^python\d+\.\d+t?$/.test(n));
  for (const lib of libs) {
    const dir = join(root, "lib", lib);
    for (
      const name of await regularFiles(
        dir,
        (n) => n.startsWith("_sysconfigdata_") && n.endsWith(".py"),
      )
    ) out.push({ rel: `lib/${lib}/${name}`, patch: patchSysconfigData });
    for (
      const name of await regularFiles(
        dir,
        (n) => n.startsWith("_sysconfig_vars_") && n.endsWith(".json"),
      )
    ) out.push({ rel: `lib/${lib}/${name}`, patch: patchSysconfigVarsJson });
  }
  for (const name of await regularFiles(join(root, "lib", "pkgconfig"), (n) => n.endsWith(".pc"))) {
    out.push({ rel: `lib/pkgconfig/${name}`, patch: (t) => patchPkgconfig(t) });
  }
  return out;
}

async function checkSize(root: string, rel: string): Promise<void> {
  const { size } = await Deno.stat(join(root, rel));
  if (size > MAX_CONFIG_BYTES) {
    throw new ArchiveError(
      `Cannot rewrite ${JSON.stringify(rel)}: it is ${size} bytes, over the ${
        MAX_CONFIG_BYTES / 1024 / 1024
      } MiB a sysconfig file may have`,
      { hint: "real ones are under 100 KiB; the archive is not a python-build-standalone build" },
    );
  }
}

async function regularDirs(dir: string, match: (name: string) => boolean): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isDirectory && match(e.name)) names.push(e.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
  return names.sort();
}
