/**
 * Where an installation came from, recorded in a `BUILD` file inside it (uv writes
 * one too): the PBS build tag, or `local` for an archive without a catalog entry, and
 * the archive's sha256. `upgrade` compares build tags; `list` shows them.
 *
 * @module
 */
import { join } from "node:path";

/** The file's name inside an installation. */
export const ORIGIN_FILE = "BUILD";

/** What the `BUILD` file records. */
export interface Origin {
  /** The PBS build tag (`20251014`), or `local`. */
  build: string;
  /** Lowercase hex sha256 of the archive, when it was read. */
  sha256?: string;
}

/**
 * Writes `BUILD` into an installation (its staging folder, before promotion): the
 * build tag on the first line, as uv's file has it, then `sha256 <hex>`.
 *
 * @example
 * ```ts
 * await writeOrigin(staging, { build: "20251014", sha256 });
 * ```
 */
export async function writeOrigin(installation: string, origin: Origin): Promise<void> {
  const lines = [origin.build, ...(origin.sha256 ? [`sha256 ${origin.sha256}`] : [])];
  await Deno.writeTextFile(join(installation, ORIGIN_FILE), lines.join("\n") + "\n");
}

/**
 * Reads an installation's `BUILD`; `undefined` when it has none (installed by an
 * older pyprime) or it is not one pyprime wrote (too big, not text lines).
 *
 * @example
 * ```ts
 * (await readOrigin("/opt/py/cpython-3.14.10-linux-x86_64-gnu"))?.build; // "20261120"
 * ```
 */
export async function readOrigin(installation: string): Promise<Origin | undefined> {
  let text: string;
  try {
    const path = join(installation, ORIGIN_FILE);
    const info = await Deno.lstat(path);
    if (!info.isFile || info.size > 4096) return undefined;
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  const [build, ...rest] = text.split("\n").map((l) => l.trim());
  if (!/^(\d{8}|local)$/.test(build)) return undefined;
  const sha256 = rest.map((l) => /^sha256 ([0-9a-f]{64})$/.exec(l)?.[1]).find(Boolean);
  return { build, ...(sha256 ? { sha256 } : {}) };
}
