// deno-lint-ignore-file no-console
/**
 * Benchmarks of issue #2 and #3, all in one run on the same fixture:
 *
 * 1. extraction: `pyprime install --no-compile-bytecode` vs `tar -xzf` / `tar --zstd -xf`,
 *    plus pyprime's peak RSS for the fixture and a 4× larger one;
 * 2. bytecode: `pyprime compile` vs `compileall -j0` vs `python -B -m compileall`
 *    (single process), the physical limit (per-file compile CPU / CPUs + one start),
 *    CPUs interpreters compiling a share each at once (nothing written), and what creating
 *    the files costs on this disk; run in interleaved rounds;
 * 3. end to end: `pyprime install` vs `tar -x` then `compileall -j0`;
 * 4. startup of the installed interpreter, compiled vs not, writing nothing, also for
 *    each CPython of the test matrix (3.12, 3.14, 3.15: `bench_startup.ts`);
 * 5. the most that overlapping extraction with compilation could save here.
 *
 *     deno task bench [--runs N] [--skip-scale] [--python PATH] [--markdown FILE] [--work-dir DIR]
 *
 * With `--pack`, only the benchmarks of `pyprime pack` run (see `bench_pack.ts`).
 *
 * `--work-dir` puts the installs there (say a tmpfs, to take the disk out of the
 * numbers); it must not be under /dev, which Deno keeps for --allow-all.
 *
 * The CLI runs through `deno run` with the binary's permission set, so its numbers
 * include Deno's own start (~0.1 s) that a compiled binary also pays.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildFixtures, type FixtureSet } from "./build_fixtures.ts";
import { permissionFlags } from "./permissions.ts";
import { startupByVersion } from "./bench_startup.ts";
import { sourcePython } from "../tests/support/fixtures.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "main.ts");
const args = Deno.args;
const RUNS = Number(args[args.indexOf("--runs") + 1]) || 5;
const SKIP_SCALE = args.includes("--skip-scale");
const markdownAt = args.indexOf("--markdown");
const MARKDOWN = markdownAt >= 0 ? args[markdownAt + 1] : undefined;
const pythonAt = args.indexOf("--python");
// Default: the interpreter the tests use (pyenv 3.12.1 when present), so numbers match them.
const PYTHON = pythonAt >= 0 ? args[pythonAt + 1] : sourcePython();
const workAt = args.indexOf("--work-dir");
const WORK_DIR = workAt >= 0 ? args[workAt + 1] : undefined;
const CPUS = navigator.hardwareConcurrency;
const flags = await permissionFlags();

if (args.includes("--pack")) {
  const { benchPack } = await import("./bench_pack.ts");
  await benchPack({
    runs: RUNS,
    skipScale: SKIP_SCALE,
    python: PYTHON,
    workDir: WORK_DIR,
    markdown: MARKDOWN,
  });
  Deno.exit(0);
}

interface Timed {
  seconds: number;
  maxRssKiB: number;
  /** User + system CPU of the command and its children. */
  cpuSeconds: number;
  /** The command's standard output. */
  stdout: string;
}

/** Runs `cmd` under Python's rusage for wall time, CPU time and peak RSS. */
async function timed(cmd: string[], env: Record<string, string> = {}): Promise<Timed> {
  const wrapper = [
    "python3",
    "-c",
    "import resource, subprocess, sys, time\n" +
    "t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); t = time.perf_counter() - t\n" +
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n" +
    "print(t, u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr)\n" +
    "sys.exit(r.returncode)",
    ...cmd,
  ];
  const out = await new Deno.Command(wrapper[0], {
    args: wrapper.slice(1),
    env: { PYTHONDONTWRITEBYTECODE: "", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
  if (!out.success) throw new Error(`${cmd.join(" ")} failed:\n${lines.join("\n")}`);
  const [seconds, rss, cpu] = lines.at(-1)!.split(" ").map(Number);
  return {
    seconds,
    maxRssKiB: rss,
    cpuSeconds: cpu,
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/** Median of `runs` runs of `prepare` then `cmd`. */
/** One command of a measurement: what to do before each run, and the command. */
interface Step {
  prepare: () => Promise<void>;
  cmd: () => string[];
  env?: Record<string, string>;
}

/**
 * Runs the steps in turn, `runs` rounds, and returns each step's median run (with the
 * highest peak RSS of its runs). Alternating keeps a drift of this VM's speed (±20 %
 * within minutes, and its disk slows down as files are created and deleted) from
 * landing on one column only.
 */
async function alternating(runs: number, steps: Step[]): Promise<Timed[]> {
  const results: Timed[][] = steps.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const [k, step] of steps.entries()) {
      await step.prepare();
      results[k].push(await timed(step.cmd(), step.env));
    }
  }
  return results.map((rs) => {
    rs.sort((a, b) => a.seconds - b.seconds);
    const mid = rs[Math.floor(rs.length / 2)];
    return { ...mid, maxRssKiB: Math.max(...rs.map((r) => r.maxRssKiB)) };
  });
}

/** Median of `runs` runs of `prepare` then `cmd`. */
async function median(
  runs: number,
  prepare: () => Promise<void>,
  cmd: () => string[],
  env?: Record<string, string>,
): Promise<Timed> {
  return (await alternating(runs, [{ prepare, cmd, env }]))[0];
}

async function fresh(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
}

const pyprime = (...rest: string[]) => [Deno.execPath(), "run", ...flags, MAIN, ...rest];

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}×`;
}

const rows: string[][] = [];
function row(...cells: (string | number)[]) {
  const r = cells.map(String);
  rows.push(r);
  console.log(r.join(" | "));
}

const work = await Deno.makeTempDir({ prefix: "pyprime-bench-", dir: WORK_DIR });
const log = (s: string) => console.error(`• ${s}`);
try {
  log("building fixtures");
  const fx: FixtureSet = await buildFixtures({
    outDir: join(ROOT, ".cache", "fixtures"),
    python: PYTHON,
  });
  const dest = join(work, "dest");
  const installDir = join(work, "pythons");
  const key = `cpython-${fx.version}-linux-x86_64-gnu`;
  const installed = join(installDir, key);
  const python = join(installed, "bin", "python3");
  const tag = fx.tag;

  // 1. Extraction.
  log(`extraction, ${RUNS} runs each (median)`);
  row("measurement", "pyprime", "reference", "ratio");
  let extractGz: Timed | undefined;
  for (const [archive, tarFlag, label] of [[fx.gz, "-xzf", "gz"], [fx.zst, "--zstd", "zst"]]) {
    const [tar, ours] = await alternating(RUNS, [{
      prepare: () => fresh(dest),
      cmd: () =>
        tarFlag === "--zstd"
          ? ["tar", "--zstd", "-xf", archive, "-C", dest]
          : ["tar", "-xzf", archive, "-C", dest],
    }, {
      prepare: () => fresh(installDir),
      cmd: () =>
        pyprime(
          "install",
          archive,
          "--install-dir",
          installDir,
          "--no-bin",
          "--no-compile-bytecode",
          "-q",
        ),
    }]);
    row(
      `extract .tar.${label} (s), vs GNU tar`,
      ours.seconds.toFixed(3),
      tar.seconds.toFixed(3),
      ratio(ours.seconds, tar.seconds),
    );
    if (label === "gz") {
      extractGz = ours;
      row("peak RSS, fixture (MiB)", (ours.maxRssKiB / 1024).toFixed(0), "", "");
      row(
        "extract .tar.gz: CPUs busy (CPU s / wall s)",
        (ours.cpuSeconds / ours.seconds).toFixed(2),
        "",
        "",
      );
    }
  }
  if (!SKIP_SCALE) {
    log("building the 4× archive for the memory check");
    const big = await buildFixtures({
      outDir: join(ROOT, ".cache", "fixtures"),
      python: PYTHON,
      scale: 4,
    });
    const small = await median(
      1,
      () => fresh(installDir),
      () =>
        pyprime("install", fx.gz, "--install-dir", installDir, "--no-bin", "--no-compile-bytecode"),
    );
    const large = await median(
      1,
      () => fresh(installDir),
      () =>
        pyprime(
          "install",
          big.gz,
          "--install-dir",
          installDir,
          "--no-bin",
          "--no-compile-bytecode",
        ),
    );
    row(
      `peak RSS (MiB): ${(fx.sizes[fx.gz] / 1048576).toFixed(0)} MiB vs ${
        (big.sizes[big.gz] / 1048576).toFixed(0)
      } MiB archive`,
      (small.maxRssKiB / 1024).toFixed(0),
      (large.maxRssKiB / 1024).toFixed(0),
      ratio(large.maxRssKiB, small.maxRssKiB),
    );
  }

  // 2. Bytecode compilation of the installed stdlib.
  log("bytecode compilation");
  await fresh(installDir);
  await timed(
    pyprime(
      "install",
      fx.gz,
      "--install-dir",
      installDir,
      "--no-bin",
      "--no-compile-bytecode",
      "-q",
    ),
  );
  const stdlib = join(installed, "lib", `python${tag}`);
  const clean = async () => {
    await new Deno.Command("find", {
      args: [
        stdlib,
        "-name",
        "__pycache__",
        "-type",
        "d",
        "-prune",
        "-exec",
        "rm",
        "-rf",
        "{}",
        "+",
      ],
    }).output();
  };
  const isolated = { PYTHONPATH: "", PYTHONDONTWRITEBYTECODE: "" };
  // Interleaved rounds: this VM's speed drifts by ±20 % within minutes, and a drift
  // must not land on one column only. Each number is the median of its RUNS samples.
  const samples: Record<string, number[]> = {
    ours: [],
    oursCpu: [],
    inProcess: [],
    j0: [],
    j1: [],
    cpu: [],
    parallel: [],
  };
  let files = 0;
  for (let i = 0; i < RUNS; i++) {
    await clean();
    const run = await timed(pyprime("compile", installed, "-q", "--json"));
    samples.ours.push(run.seconds);
    samples.oursCpu.push(run.cpuSeconds);
    samples.inProcess.push(JSON.parse(run.stdout).seconds);
    await clean();
    samples.j0.push(
      (await timed([python, "-m", "compileall", "-q", "-j0", stdlib], isolated)).seconds,
    );
    await clean();
    samples.j1.push(
      (await timed([python, "-B", "-m", "compileall", "-q", stdlib], isolated)).seconds,
    );
    const cpu = await compileCpu(python, stdlib);
    samples.cpu.push(cpu.seconds);
    files = cpu.files;
    samples.parallel.push(await parallelCompile(python, stdlib));
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const ours = { seconds: med(samples.ours) };
  const inProcess = med(samples.inProcess);
  const j0 = { seconds: med(samples.j0) };
  const j1 = { seconds: med(samples.j1) };
  const start = (await median(5, () =>
    Promise.resolve(), () => [python, "-I", "-B", "-c", "pass"])).seconds;
  const limit = { cpu: med(samples.cpu), start, seconds: med(samples.cpu) / CPUS + start, files };
  const parallel = med(samples.parallel);
  const creation = await fileCreation(python, work, limit.files);
  const compileCpuUsed = med(samples.oursCpu);
  row(
    "compile stdlib (s): pyprime vs compileall -j0",
    ours.seconds.toFixed(3),
    j0.seconds.toFixed(3),
    ratio(ours.seconds, j0.seconds),
  );
  row(
    "compile stdlib (s): pyprime vs python -B -m compileall",
    ours.seconds.toFixed(3),
    j1.seconds.toFixed(3),
    ratio(ours.seconds, j1.seconds),
  );
  const limitLabel = `physical limit (CPU ${limit.cpu.toFixed(2)} s / ${CPUS} + start ${
    limit.start.toFixed(3)
  } s)`;
  row(
    `compile stdlib (s): pyprime vs ${limitLabel}`,
    ours.seconds.toFixed(3),
    limit.seconds.toFixed(3),
    ratio(ours.seconds, limit.seconds),
  );
  row(
    `compile stdlib (s): pyprime in-process (report.seconds) vs the same limit`,
    inProcess.toFixed(3),
    limit.seconds.toFixed(3),
    ratio(inProcess, limit.seconds),
  );
  row(
    `compile stdlib (s): pyprime vs ${CPUS} processes compiling 1/${CPUS} each at once, no writes`,
    ours.seconds.toFixed(3),
    parallel.toFixed(3),
    ratio(ours.seconds, parallel),
  );
  row(
    `creating ${limit.files} empty files in the work dir, one process (CPU s)`,
    creation.toFixed(3),
    "",
    "",
  );
  const realistic = parallel + creation / CPUS;
  row(
    `compile stdlib (s): pyprime vs the ${CPUS} processes at once + creating the files / ${CPUS}`,
    ours.seconds.toFixed(3),
    realistic.toFixed(3),
    ratio(ours.seconds, realistic),
  );

  // 3. End to end.
  log("end-to-end install");
  const [e2e, baseline] = await alternating(RUNS, [{
    prepare: () => fresh(installDir),
    cmd: () => pyprime("install", fx.gz, "--install-dir", installDir, "--no-bin", "-q"),
  }, {
    prepare: () => fresh(dest),
    cmd: () => [
      "sh",
      "-c",
      `tar -xzf "$0" -C "$1" && "$1/python/bin/python3" -m compileall -q -j0 "$1/python/lib/python${tag}"`,
      fx.gz,
      dest,
    ],
    env: isolated,
  }]);
  row(
    "install + compile (s): pyprime vs tar -xzf && compileall -j0",
    e2e.seconds.toFixed(3),
    baseline.seconds.toFixed(3),
    ratio(e2e.seconds, baseline.seconds),
  );

  // 4. Startup, with pyprime's installed tree compiled (e2e left it) vs an uncompiled tree.
  log("startup");
  await fresh(dest);
  await new Deno.Command("tar", { args: ["-xzf", fx.gz, "-C", dest] }).output();
  const bare = join(dest, "python", "bin", "python3");
  const imports =
    "import asyncio, json, email.parser, http.client, decimal, typing, dataclasses, logging, argparse";
  for (const [label, code] of [["import line", imports], ["pass", "pass"]]) {
    const run = (py: string) => () => [py, "-I", "-B", "-c", code];
    const idle = () => Promise.resolve();
    const [compiled, uncompiled] = await alternating(RUNS * 4, [
      { prepare: idle, cmd: run(python) },
      { prepare: idle, cmd: run(bare) },
    ]);
    row(
      `startup ${label} (ms): uncompiled / compiled`,
      (compiled.seconds * 1000).toFixed(1),
      (uncompiled.seconds * 1000).toFixed(1),
      ratio(uncompiled.seconds, compiled.seconds),
    );
  }
  // 4b. The same start-up gain for every CPython of the test matrix, in one set of rounds.
  log("startup per CPython version");
  for (const r of await startupByVersion(RUNS * 4, work)) {
    row(
      `startup import line (ms), CPython ${r.version}: compiled / uncompiled`,
      r.compiledMs.toFixed(1),
      r.uncompiledMs.toFixed(1),
      ratio(r.uncompiledMs, r.compiledMs),
    );
  }
  // 5. Would overlapping extraction and compilation pay on this machine? Upper bound:
  // extract archive A while compiling an already-extracted tree B, vs one after the other.
  log("overlap bound");
  const other = join(work, "other");
  const extractOnly = () =>
    pyprime("install", fx.gz, "--install-dir", other, "--no-bin", "--no-compile-bytecode", "-q");
  const sequential: number[] = [];
  const concurrent: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await fresh(other);
    await clean();
    let t = performance.now();
    await timed(extractOnly());
    await timed(pyprime("compile", installed, "-q"));
    sequential.push((performance.now() - t) / 1000);
    await fresh(other);
    await clean();
    t = performance.now();
    await Promise.all([timed(extractOnly()), timed(pyprime("compile", installed, "-q"))]);
    concurrent.push((performance.now() - t) / 1000);
  }
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  row(
    "overlap bound (s): extract ∥ compile vs extract; compile",
    mid(concurrent).toFixed(3),
    mid(sequential).toFixed(3),
    ratio(mid(concurrent), mid(sequential)),
  );
  // CPU accounting: overlapped, the install cannot end before the extraction does, nor
  // before both CPUs have done the extraction's and the compilation's CPU work.
  const gz = extractGz!;
  const bestOverlap = Math.max(gz.seconds, (gz.cpuSeconds + compileCpuUsed) / CPUS);
  row(
    `overlap by CPU accounting (s): max(extract, (extract CPU ${
      gz.cpuSeconds.toFixed(2)
    } + compile CPU ${compileCpuUsed.toFixed(2)}) / ${CPUS}) vs extract + compile`,
    bestOverlap.toFixed(3),
    (gz.seconds + ours.seconds).toFixed(3),
    ratio(bestOverlap, gz.seconds + ours.seconds),
  );
  if (MARKDOWN) {
    const table = [
      "| measurement | pyprime | reference | ratio |",
      "|---|---:|---:|---:|",
      ...rows.slice(1).map((r) => `| ${r.join(" | ")} |`),
    ].join("\n");
    await Deno.writeTextFile(MARKDOWN, table + "\n");
  }
} finally {
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

/**
 * The physical limit is this sum of per-file compile CPU time (`compile` +
 * `marshal.dumps`, in one process), divided by the CPUs, plus one interpreter start.
 */
async function compileCpu(py: string, stdlib: string): Promise<{ seconds: number; files: number }> {
  const script = `
import marshal, os, sys, time
total = 0.0
count = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for f in files:
        if not f.endswith(".py"):
            continue
        p = os.path.join(root, f)
        count += 1
        t = time.process_time()
        try:
            data = open(p, "rb").read()
            code = compile(data, p, "exec", dont_inherit=True)  # what SourceLoader.source_to_code does
            marshal.dumps(code)
        except Exception:
            pass
        total += time.process_time() - t
print(total, count)
`;
  const out = await new Deno.Command(py, {
    args: ["-I", "-B", "-c", script, stdlib],
    stdout: "piped",
  })
    .output();
  if (!out.success) throw new Error(`the physical-limit script failed in ${py}`);
  const [seconds, files] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
  return { seconds, files };
}

/**
 * What the machine does with CPUS processes compiling at once: the files, largest
 * first, dealt round-robin into CPUS shares, each share compiled (`compile` +
 * `marshal.dumps`, nothing written) by its own interpreter, all started together.
 * Wall time from the first spawn to the last exit. Unlike the limit, it
 * includes what concurrent processes cost each other on this machine, but nothing
 * pyprime does beyond compiling.
 */
async function parallelCompile(py: string, stdlib: string): Promise<number> {
  const script = `
import marshal, os, sys
paths = []
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    paths += [os.path.join(root, f) for f in files if f.endswith(".py")]
paths.sort(key=lambda p: (-os.stat(p).st_size, p))
for p in paths[int(sys.argv[2])::int(sys.argv[3])]:
    try:
        marshal.dumps(compile(open(p, "rb").read(), p, "exec", dont_inherit=True))
    except Exception:
        pass
`;
  const t = performance.now();
  const outs = await Promise.all(
    Array.from({ length: CPUS }, (_, k) =>
      new Deno.Command(py, {
        args: ["-I", "-B", "-c", script, stdlib, String(k), String(CPUS)],
        stdout: "null",
      }).output()),
  );
  if (!outs.every((o) => o.success)) throw new Error(`the parallel-limit script failed`);
  return (performance.now() - t) / 1000;
}

/** CPU seconds one process spends creating `count` empty files in a fresh folder under `dir`. */
async function fileCreation(py: string, dir: string, count: number): Promise<number> {
  const target = join(dir, "creation");
  await fresh(target);
  const script = `
import os, sys, time
t = time.process_time()
for i in range(int(sys.argv[2])):
    os.close(os.open(os.path.join(sys.argv[1], "f%d" % i), os.O_WRONLY | os.O_CREAT, 0o644))
print(time.process_time() - t)
`;
  const out = await new Deno.Command(py, {
    args: ["-I", "-B", "-c", script, target, String(count)],
    stdout: "piped",
  }).output();
  await Deno.remove(target, { recursive: true });
  if (!out.success) throw new Error(`the file-creation script failed in ${py}`);
  return Number(new TextDecoder().decode(out.stdout).trim());
}
