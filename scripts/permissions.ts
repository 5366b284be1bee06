/**
 * The permission set of pyprime is declared once, in the `pyprime` task of
 * `deno.json`. The compile script and the tests read it from there, so the
 * binary, `deno task pyprime` and the test suite can never drift apart.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

/**
 * Returns the `deno run` flags of the `pyprime` task: every flag between
 * `deno run` and `main.ts`, e.g. `["--no-prompt", "--allow-read", …]`.
 *
 * @example
 * ```ts
 * const flags = await permissionFlags();
 * new Deno.Command(Deno.execPath(), { args: ["run", ...flags, "main.ts", "list"] });
 * ```
 */
export async function permissionFlags(configPath = CONFIG): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(configPath));
  const task: string | undefined = config?.tasks?.pyprime;
  if (typeof task !== "string") throw new Error(`${configPath}: no "pyprime" task`);
  const words = task.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== "main.ts") {
    throw new Error(`${configPath}: the "pyprime" task must be "deno run <flags> main.ts"`);
  }
  return words.slice(2, -1);
}
