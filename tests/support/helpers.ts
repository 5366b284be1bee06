/**
 * Small file-system and interpreter helpers shared by the integration tests.
 *
 * @module
 */
import { join } from "node:path";

/** Every path below `root`, relative and sorted; `[]` when `root` does not exist. */
export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, rel: string) {
    for await (const e of Deno.readDir(dir)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory) await walk(join(dir, e.name), r);
    }
  }
  await walk(root, "").catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  return out.sort();
}

/** The names in `dir`, sorted; `[]` when it does not exist. */
export async function names(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/**
 * Streams `bytes` in chunks of `chunk` bytes (odd sizes make entries and magic bytes
 * straddle chunk boundaries).
 */
export function streamOf<T extends Uint8Array>(bytes: T, chunk: number): ReadableStream<T> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk) as T);
      offset += chunk;
    },
  });
}

/** Runs `fn`, then puts the environment variables `names` back as they were. */
export function withEnv(names: string[], fn: () => void): void {
  const saved = names.map((n) => [n, Deno.env.get(n)] as const);
  try {
    fn();
  } finally {
    for (const [n, v] of saved) v === undefined ? Deno.env.delete(n) : Deno.env.set(n, v);
  }
}
