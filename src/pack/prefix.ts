/**
 * Undoes, in the packed copy only, the build-prefix rewrite an install made
 * (`src/install/sysconfig.ts`): the installation's own path in `_sysconfigdata_*.py`
 * and `_sysconfig_vars_*.json` becomes `/install` again, and the pkg-config files'
 * `${pcfiledir}/../..` becomes `/install`. A pack then installs anywhere exactly like a
 * python-build-standalone archive. The compiler names the install chose (`cc`, `ar`)
 * and its `PYTHON_BUILD_STANDALONE` marker stay: the rewrite of the next install
 * leaves them as they are.
 *
 * The prefix to undo is read from the file's own `prefix` variable, so an installation
 * that was moved after it was installed is still packed right.
 *
 * @module
 */
import { BUILD_PREFIX } from "../install/sysconfig.ts";
import { parseBuildTimeVars, pythonString } from "../install/python_literal.ts";
import { PyprimeError } from "../errors.ts";

/** Whether `rel` (relative to the installation root) is a file the install rewrote. */
export function isRewritten(rel: string): boolean {
  return /^lib\/python\d+\.\d+t?\/_sysconfigdata_[^/]*\.py$/.test(rel) ||
    /^lib\/python\d+\.\d+t?\/_sysconfig_vars_[^/]*\.json$/.test(rel) ||
    /^lib\/pkgconfig\/[^/]+\.pc$/.test(rel);
}

function unprefixWords(value: string, prefix: string): string {
  return value.split(/(\s+)/).map((word, i) => {
    if (i % 2 === 1 || prefix === BUILD_PREFIX) return word;
    if (word === prefix) return BUILD_PREFIX;
    return word.startsWith(`${prefix}/`) ? BUILD_PREFIX + word.slice(prefix.length) : word;
  }).join("");
}

/**
 * `_sysconfigdata_*.py` text with the install's prefix put back to `/install`; only the
 * changed string literals are rewritten.
 *
 * @example
 * ```ts
 * unpatchSysconfigData("build_time_vars = {'prefix': '/opt/py', 'BINDIR': '/opt/py/bin'}\n");
 * // "build_time_vars = {'prefix': '/install', 'BINDIR': '/install/bin'}\n"
 * ```
 */
export function unpatchSysconfigData(text: string): string {
  const { items } = parseBuildTimeVars(text);
  const prefix = items.find((i) => i.key === "prefix")?.value;
  if (typeof prefix !== "string" || !prefix.startsWith("/")) return text;
  let out = text;
  for (const item of [...items].sort((a, b) => b.start - a.start)) {
    if (typeof item.value !== "string") continue;
    const undone = unprefixWords(item.value, prefix);
    if (undone !== item.value) {
      out = out.slice(0, item.start) + pythonString(undone) + out.slice(item.end);
    }
  }
  return out;
}

/** `_sysconfig_vars_*.json` (3.14+) with the prefix put back, formatted as the install wrote it. */
export function unpatchSysconfigVars(text: string): string {
  const vars: Record<string, unknown> = JSON.parse(text);
  const prefix = vars.prefix;
  if (typeof prefix !== "string" || !prefix.startsWith("/")) return text;
  let changed = false;
  for (const [key, value] of Object.entries(vars)) {
    if (typeof value !== "string") continue;
    const undone = unprefixWords(value, prefix);
    if (undone !== value) {
      vars[key] = undone;
      changed = true;
    }
  }
  return changed ? JSON.stringify(vars, null, 2) + "\n" : text;
}

/**
 * A `.pc` file with `name=${pcfiledir}/../..[/…]` lines back to `name=/install[/…]`.
 *
 * @example
 * ```ts
 * unpatchPkgconfig("prefix=${pcfiledir}/../..\n"); // "prefix=/install\n"
 * ```
 */
export function unpatchPkgconfig(text: string): string {
  return text.replace(
    /^([A-Za-z_][\w.]*)=\$\{pcfiledir\}\/\.\.\/\.\.(\/[^\r\n]*)?(?=\r?$)/gm,
    (_m, name: string, rest = "") => `${name}=${BUILD_PREFIX}${rest}`,
  );
}

/**
 * The packed bytes of a rewritten file (see {@link isRewritten}), or `undefined` when
 * nothing changes.
 *
 * @throws {PyprimeError} when the file is not in the format the install wrote
 */
export function unpatch(rel: string, bytes: Uint8Array): Uint8Array | undefined {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined; // not text we wrote: packed as it is
  }
  let undone: string;
  try {
    undone = rel.endsWith(".pc")
      ? unpatchPkgconfig(text)
      : rel.endsWith(".json")
      ? unpatchSysconfigVars(text)
      : unpatchSysconfigData(text);
  } catch (err) {
    throw new PyprimeError(`Cannot pack ${rel}: ${(err as Error).message}`, {
      cause: err,
      hint: "the sysconfig data is not what pyprime install writes; reinstall the Python",
    });
  }
  return undone === text ? undefined : new TextEncoder().encode(undone);
}
