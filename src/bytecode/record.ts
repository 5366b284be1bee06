/**
 * The bytecode record of an installation: a small JSON file at its root saying how its
 * standard library was compiled (optimize levels, invalidation mode, excluded paths).
 * `pyprime install` and `pyprime compile <installation>` write it; `pyprime pack` reads
 * it to check that every source has a current `.pyc` for those levels. It is not
 * packed: an install of the pack writes its own.
 *
 * ```json
 * {"format": 1, "optimize": [0], "invalidationMode": "timestamp", "exclude": []}
 * ```
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { PyprimeError } from "../errors.ts";
import type { InvalidationMode } from "./settings.ts";

/** The record's file name, at the root of an installation. */
export const BYTECODE_RECORD = "pyprime-bytecode.json";

/** What a bytecode record holds. */
export interface BytecodeRecord {
  /** Format of the file; 1. */
  format: 1;
  /** Optimization levels compiled. */
  optimize: number[];
  /** Invalidation mode of the compiled `.pyc`. */
  invalidationMode: InvalidationMode;
  /** `--exclude` regular expressions (source text) whose paths were not compiled. */
  exclude: string[];
}

/**
 * Writes the record of `installation` (atomically, so a reader sees the old or the new).
 *
 * @example
 * ```ts
 * await writeBytecodeRecord("/opt/py", { optimize: [0], invalidationMode: "timestamp", exclude: [] });
 * ```
 */
export async function writeBytecodeRecord(
  installation: string,
  record: Omit<BytecodeRecord, "format">,
): Promise<void> {
  const path = join(installation, BYTECODE_RECORD);
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  const body: BytecodeRecord = {
    format: 1,
    optimize: [...record.optimize].sort(),
    invalidationMode: record.invalidationMode,
    exclude: record.exclude,
  };
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(body) + "\n", { mode: 0o644 });
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new PyprimeError(`Cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the record of `installation`; `undefined` when there is none (never compiled). */
export async function readBytecodeRecord(
  installation: string,
): Promise<BytecodeRecord | undefined> {
  const path = join(installation, BYTECODE_RECORD);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new PyprimeError(`Cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const r = JSON.parse(text);
    const levels = Array.isArray(r.optimize) && r.optimize.length > 0 &&
      r.optimize.every((l: unknown) => l === 0 || l === 1 || l === 2);
    const modes = ["timestamp", "checked-hash", "unchecked-hash"];
    if (
      r.format !== 1 || !levels || !modes.includes(r.invalidationMode) ||
      !Array.isArray(r.exclude) || !r.exclude.every((e: unknown) => typeof e === "string")
    ) throw new Error("not a bytecode record of format 1");
    return r;
  } catch (err) {
    throw new PyprimeError(`Cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: `run \`pyprime compile ${installation}\` to compile the installation and rewrite it`,
    });
  }
}

/**
 * Removes every `.pyc` of the given sources (relative to `root`; other paths are
 * ignored): `__pycache__/<stem>.*.pyc`, whatever the tag or level.
 */
export async function removeBytecodeOf(root: string, sources: string[]): Promise<void> {
  for (const rel of sources.filter((s) => s.endsWith(".py"))) {
    const cache = join(root, dirname(rel), "__pycache__");
    const stem = basename(rel).slice(0, -3) + ".";
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(cache)].map((e) => e.name);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw new PyprimeError(`Cannot list ${cache}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of names) {
      const rest = name.slice(stem.length, -".pyc".length);
      if (!name.startsWith(stem) || !name.endsWith(".pyc") || !/^[^.]+(\.opt-[12])?$/.test(rest)) {
        continue;
      }
      await Deno.remove(join(cache, name)).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  }
}
