// deno-lint-ignore-file no-console
/**
 * Benchmarks of issue #14 (`deno task bench --pack`), in one run on the fixture:
 *
 * - install of a pack vs `tar -x` of the same pack (goal ≤ 1.3×), vs install + compile
 *   of the original archive (goal: ≥ 2× faster), vs `tar -x` + `compileall -j0` of the
 *   original; alternating rounds, medians;
 * - pack time and pyprime's peak RSS, for the fixture and (unless `--skip-scale`) a
 *   4× larger one, to show it flat in tree size; the pack's size vs the original's.
 *
 * The pack is installed into another folder than the one it was packed from, so the
 * numbers include relocation.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildFixtures, type FixtureSet } from "./build_fixtures.ts";
import { permissionFlags } from "./permissions.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "main.ts");

interface Timed {
  seconds: number;
  maxRssKiB: number;
}

/** Wall time and the peak RSS of the biggest process of the command (getrusage). */
async function timed(
  cmd: string[],
  env: Record<string, string> = {},
  stdout?: (text: string) => void,
): Promise<Timed> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      "import resource, subprocess, sys, time\n" +
      "t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); t = time.perf_counter() - t\n" +
      "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n" +
      "print(t, u.ru_maxrss, file=sys.stderr)\nsys.exit(r.returncode)",
      ...cmd,
    ],
    env: { PYTHONDONTWRITEBYTECODE: "", PYTHONPATH: "", NO_COLOR: "1", ...env },
    stdout: stdout ? "piped" : "null",
    stderr: "piped",
  }).output();
  stdout?.(new TextDecoder().decode(out.stdout));
  const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
  if (!out.success) throw new Error(`${cmd.join(" ")} failed:\n${lines.join("\n")}`);
  const [seconds, rss] = lines.at(-1)!.split(" ").map(Number);
  return { seconds, maxRssKiB: rss };
}

async function fresh(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** Options of {@link benchPack}. */
export interface PackBenchOptions {
  /** Rounds of the alternating measurement. */
  runs: number;
  /** Skip the 4× tree. */
  skipScale: boolean;
  /** Source interpreter of the fixtures. */
  python?: string;
  /** Where installs go. */
  workDir?: string;
  /** Prints the rows as a markdown table here. */
  markdown?: string;
}

/** Runs the pack benchmarks and prints `measurement | pyprime | reference | ratio` rows. */
export async function benchPack(options: PackBenchOptions): Promise<void> {
  const flags = await permissionFlags();
  const pyprime = (...rest: string[]) => [Deno.execPath(), "run", ...flags, MAIN, ...rest];
  const rows: string[][] = [];
  const row = (...cells: (string | number)[]) => {
    rows.push(cells.map(String));
    console.log(cells.join(" | "));
  };
  const log = (s: string) => console.error(`• ${s}`);
  const work = await Deno.makeTempDir({ prefix: "pyprime-bench-pack-", dir: options.workDir });
  try {
    const fx: FixtureSet = await buildFixtures({
      outDir: join(ROOT, ".cache", "fixtures"),
      python: options.python,
    });
    const key = `cpython-${fx.version}-linux-x86_64-gnu`;
    row("measurement", "pyprime", "reference", "ratio");

    /** Installs `archive` compiled, packs it `runs` times; returns the pack and its costs. */
    const packOf = async (set: FixtureSet, runs: number) => {
      const from = join(work, `from-scale${set.scale}`);
      await fresh(from);
      await timed(pyprime("install", set.zst, "--install-dir", from, "--no-bin", "-q"));
      const pack = join(work, `pack-scale${set.scale}.tar.zst`);
      const times: Timed[] = [];
      for (let i = 0; i < runs; i++) {
        await Deno.remove(pack).catch(() => {});
        times.push(await timed(pyprime("pack", join(from, key), "-o", pack, "-q")));
      }
      return {
        pack,
        seconds: median(times.map((t) => t.seconds)),
        rssKiB: Math.max(...times.map((t) => t.maxRssKiB)),
        bytes: (await Deno.stat(pack)).size,
      };
    };

    log("packing the fixture");
    const one = await packOf(fx, options.runs);
    row("pack the fixture (s)", one.seconds.toFixed(3), "", "");
    row("pack: peak RSS (MiB)", (one.rssKiB / 1024).toFixed(0), "", "");
    row(
      "size (MiB): pack vs original .tar.zst",
      (one.bytes / 1048576).toFixed(1),
      (fx.sizes[fx.zst] / 1048576).toFixed(1),
      `${(one.bytes / fx.sizes[fx.zst]).toFixed(2)}×`,
    );
    if (!options.skipScale) {
      log("packing the 4× tree");
      const big = await buildFixtures({
        outDir: join(ROOT, ".cache", "fixtures"),
        python: options.python,
        scale: 4,
      });
      const four = await packOf(big, 1);
      row(
        `pack peak RSS (MiB): fixture vs 4× tree (${(four.bytes / 1048576).toFixed(0)} MiB pack)`,
        (one.rssKiB / 1024).toFixed(0),
        (four.rssKiB / 1024).toFixed(0),
        `${(four.rssKiB / one.rssKiB).toFixed(2)}×`,
      );
      row("pack the 4× tree (s)", four.seconds.toFixed(3), "", "");
    }

    log(`installs, ${options.runs} alternating rounds`);
    const dir = join(work, "pythons"), dest = join(work, "dest");
    // The pack's install reports its phases (--json): what the rest of its time is.
    const phases: Record<string, number[]> = {};
    const phase = (name: string, value: number) => (phases[name] ??= []).push(value);
    const installed = join(dir, key, "bin", "python3");
    const steps: {
      name: string;
      prepare: () => Promise<void>;
      cmd: string[];
      stdout?: (text: string) => void;
    }[] = [
      {
        name: "pack",
        prepare: () => fresh(dir),
        cmd: pyprime("install", one.pack, "--install-dir", dir, "--no-bin", "-q", "--json"),
        stdout: (text) => {
          const [outcome] = JSON.parse(text);
          phase("extract", outcome.extractSeconds);
          phase("bytecode", outcome.bytecode.seconds);
        },
      },
      // The floor of any pyprime install: Deno's start and one interpreter start (the
      // probe and the compile of the rewritten sysconfig data each cost one).
      { name: "start", prepare: async () => {}, cmd: pyprime("--version") },
      {
        name: "python",
        prepare: async () => {},
        cmd: [installed, "-I", "-S", "-c", "import sysconfig; sysconfig.get_paths()"],
      },
      { name: "zstd", prepare: async () => {}, cmd: ["zstd", "-dqf", one.pack, "-o", "/dev/null"] },
      {
        name: "tar",
        prepare: () => fresh(dest),
        cmd: ["tar", "--zstd", "-xf", one.pack, "-C", dest],
      },
      {
        name: "original",
        prepare: () => fresh(dir),
        cmd: pyprime("install", fx.zst, "--install-dir", dir, "--no-bin", "-q"),
      },
      {
        name: "compileall",
        prepare: () => fresh(dest),
        cmd: [
          "sh",
          "-c",
          `tar --zstd -xf "$0" -C "$1" && "$1/python/bin/python3" -m compileall -q -j0 "$1/python/lib/python${fx.tag}"`,
          fx.zst,
          dest,
        ],
      },
    ];
    const samples: Record<string, number[]> = {};
    for (let i = 0; i < options.runs; i++) {
      for (const step of steps) {
        await step.prepare();
        (samples[step.name] ??= []).push((await timed(step.cmd, {}, step.stdout)).seconds);
      }
    }
    const [pack, start, python, zstd, tar, original, compileall] = steps.map((s) =>
      median(samples[s.name])
    );
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    const extract = median(phases.extract), bytecode = median(phases.bytecode);
    row(
      "install of the pack: extraction (s) vs zstd -d of it",
      extract.toFixed(3),
      zstd.toFixed(3),
      ratio(extract, zstd),
    );
    row("install of the pack: bytecode step (s)", bytecode.toFixed(3), "", "");
    row("pyprime --version (s): Deno's start", start.toFixed(3), "", "");
    row("one start of the installed python3 -I -S (s)", python.toFixed(3), "", "");
    row(
      "floor: start + extraction + 2 python starts (s) vs tar -x",
      (start + extract + 2 * python).toFixed(3),
      tar.toFixed(3),
      ratio(start + extract + 2 * python, tar),
    );
    row(
      "install (s): the pack vs tar --zstd -xf of it",
      pack.toFixed(3),
      tar.toFixed(3),
      ratio(pack, tar),
    );
    row(
      "install (s): the pack vs install + compile of the original (× faster)",
      pack.toFixed(3),
      original.toFixed(3),
      ratio(original, pack),
    );
    row(
      "install (s): the pack vs tar -x + compileall -j0 of the original (× faster)",
      pack.toFixed(3),
      compileall.toFixed(3),
      ratio(compileall, pack),
    );
    if (options.markdown) {
      const table = [
        "| measurement | pyprime | reference | ratio |",
        "|---|---:|---:|---:|",
        ...rows.slice(1).map((r) => `| ${r.join(" | ")} |`),
      ].join("\n");
      await Deno.writeTextFile(options.markdown, table + "\n");
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
