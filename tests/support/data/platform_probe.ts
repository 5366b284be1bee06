/**
 * Prints the detected platform as one JSON line. tests/resolve/platform_test.ts runs it
 * with the flags of the `pyprime` task, to check detection works without
 * `--allow-all`.
 *
 * ```sh
 * deno run <flags> tests/support/data/platform_probe.ts
 * ```
 *
 * @module
 */
import { detectPlatform } from "../../../src/resolve/platform.ts";

await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(await detectPlatform()) + "\n"));
