// deno-lint-ignore-file no-console
/**
 * Start-up gain of a compiled stdlib for every CPython of the test matrix (the fixtures'
 * own, Debian's 3.14 and 3.15): `python -I -B -c "<the benchmarks' import line>"` from a
 * tree `pyprime install` compiled vs the same archive unpacked by `tar` (no `.pyc`; `-B`
 * keeps it so). All versions and both trees run in alternating rounds in one run, so
 * the VM's drift spreads over every cell. Part of `scripts/bench.ts`; alone:
 *
 *     deno run -A scripts/bench_startup.ts [--runs N] [--work-dir DIR]
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { permissionFlags } from "./permissions.ts";
import { debianFixtures, fixtures } from "../tests/support/fixtures.ts";

/** The import line of every start-up benchmark. */
export const IMPORT_LINE =
  "import asyncio, json, email.parser, http.client, decimal, typing, dataclasses, logging, argparse";

/** One version's medians, in milliseconds. */
export interface StartupRow {
  version: string;
  compiledMs: number;
  uncompiledMs: number;
}

async function ms(cmd: string[]): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`${cmd[0]}: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - t;
}

/**
 * Installs each version compiled and unpacked bare under `work`, then times the import
 * line `runs` times per tree, round-robin over all trees.
 */
export async function startupByVersion(runs: number, work: string): Promise<StartupRow[]> {
  const main = fileURLToPath(new URL("../main.ts", import.meta.url));
  const flags = await permissionFlags();
  const sets = [await fixtures(), await debianFixtures("3.14"), await debianFixtures("3.15")];
  const trees: { version: string; compiled: string; bare: string }[] = [];
  for (const fx of sets) {
    const dir = join(work, `startup-${fx.version}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(join(dir, "bare"), { recursive: true });
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, main, "install", fx.gz, "--install-dir", dir, "--no-bin", "-q"],
      env: { NO_COLOR: "1" },
    }).output();
    if (!install.success) throw new Error(`install ${fx.gz} failed`);
    await new Deno.Command("tar", { args: ["-xzf", fx.gz, "-C", join(dir, "bare")] }).output();
    const key = `cpython-${fx.version}-linux-x86_64-gnu`;
    trees.push({
      version: fx.version,
      compiled: join(dir, key, "bin", "python3"),
      bare: join(dir, "bare", "python", "bin", "python3"),
    });
  }
  const samples = trees.map(() => ({ compiled: [] as number[], bare: [] as number[] }));
  for (let i = 0; i < runs; i++) {
    for (const [k, t] of trees.entries()) {
      samples[k].compiled.push(await ms([t.compiled, "-I", "-B", "-c", IMPORT_LINE]));
      samples[k].bare.push(await ms([t.bare, "-I", "-B", "-c", IMPORT_LINE]));
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return trees.map((t, k) => ({
    version: t.version,
    compiledMs: med(samples[k].compiled),
    uncompiledMs: med(samples[k].bare),
  }));
}

if (import.meta.main) {
  const args = Deno.args;
  const runs = Number(args[args.indexOf("--runs") + 1]) || 21;
  const at = args.indexOf("--work-dir");
  const work = await Deno.makeTempDir({
    prefix: "pyprime-startup-",
    dir: at >= 0 ? args[at + 1] : undefined,
  });
  try {
    console.log("| CPython | compiled (ms) | uncompiled (ms) | gain |");
    console.log("|---|---:|---:|---:|");
    for (const r of await startupByVersion(runs, work)) {
      const gain = (r.uncompiledMs / r.compiledMs).toFixed(2);
      console.log(
        `| ${r.version} | ${r.compiledMs.toFixed(1)} | ${r.uncompiledMs.toFixed(1)} | ${gain}× |`,
      );
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
