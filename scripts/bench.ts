// deno-lint-ignore-file no-console
/**
 * Benchmarks of issue #2 and #3, all in one run on the same fixture:
 *
 * 1. extraction: `pyprime install --no-compile-bytecode` vs `tar -xzf` / `tar --zstd -xf`,
 *    plus pyprime's peak RSS for the fixture and a 4× larger one;
 * 2. bytecode: `pyprime compile` vs `compileall -j0` vs `python -B -m compileall`
 *    (single process), and the physical limit (per-file compile CPU / CPUs + one start);
 * 3. end to end: `pyprime install` vs `tar -x` then `compileall -j0`;
 * 4. startup of the installed interpreter, compiled vs not, writing nothing;
 * 5. the most that overlapping extraction with compilation could save here.
 *
 *     deno task bench [--runs N] [--skip-scale] [--python PATH] [--markdown FILE]
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
import { sourcePython } from "../tests/fixtures.ts";

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
const CPUS = navigator.hardwareConcurrency;
const flags = await permissionFlags();

interface Timed {
  seconds: number;
  maxRssKiB: number;
}

/** Runs `cmd` under GNU time (or Python's rusage) for wall time and peak RSS. */
async function timed(cmd: string[], env: Record<string, string> = {}): Promise<Timed> {
  const wrapper = [
    "python3",
    "-c",
    "import resource, subprocess, sys, time\n" +
    "t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); t = time.perf_counter() - t\n" +
    "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n" +
    "sys.exit(r.returncode)",
    ...cmd,
  ];
  const out = await new Deno.Command(wrapper[0], {
    args: wrapper.slice(1),
    env: { PYTHONDONTWRITEBYTECODE: "", NO_COLOR: "1", ...env },
    stdout: "null",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
  if (!out.success) throw new Error(`${cmd.join(" ")} failed:\n${lines.join("\n")}`);
  const [seconds, rss] = lines.at(-1)!.split(" ").map(Number);
  return { seconds, maxRssKiB: rss };
}

/** Median of `runs` runs of `prepare` then `cmd`. */
async function median(
  runs: number,
  prepare: () => Promise<void>,
  cmd: () => string[],
  env?: Record<string, string>,
): Promise<Timed> {
  const results: Timed[] = [];
  for (let i = 0; i < runs; i++) {
    await prepare();
    results.push(await timed(cmd(), env));
  }
  results.sort((a, b) => a.seconds - b.seconds);
  const mid = results[Math.floor(results.length / 2)];
  return { seconds: mid.seconds, maxRssKiB: Math.max(...results.map((r) => r.maxRssKiB)) };
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

const work = await Deno.makeTempDir({ prefix: "pyprime-bench-" });
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
  for (const [archive, tarFlag, label] of [[fx.gz, "-xzf", "gz"], [fx.zst, "--zstd", "zst"]]) {
    const tar = await median(
      RUNS,
      () => fresh(dest),
      () =>
        tarFlag === "--zstd"
          ? ["tar", "--zstd", "-xf", archive, "-C", dest]
          : ["tar", "-xzf", archive, "-C", dest],
    );
    const ours = await median(RUNS, () => fresh(installDir), () =>
      pyprime(
        "install",
        archive,
        "--install-dir",
        installDir,
        "--no-bin",
        "--no-compile-bytecode",
        "-q",
      ));
    row(
      `extract .tar.${label} (s), vs GNU tar`,
      ours.seconds.toFixed(3),
      tar.seconds.toFixed(3),
      ratio(ours.seconds, tar.seconds),
    );
    if (label === "gz") {
      row("peak RSS, fixture (MiB)", (ours.maxRssKiB / 1024).toFixed(0), "", "");
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
  const ours = await median(RUNS, clean, () => pyprime("compile", installed, "-q"));
  const j0 = await median(
    RUNS,
    clean,
    () => [python, "-m", "compileall", "-q", "-j0", stdlib],
    isolated,
  );
  const j1 = await median(
    RUNS,
    clean,
    () => [python, "-B", "-m", "compileall", "-q", stdlib],
    isolated,
  );
  const limit = await physicalLimit(python, stdlib);
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
  row(
    `compile stdlib (s): pyprime vs physical limit (CPU ${
      limit.cpu.toFixed(2)
    } s / ${CPUS} + start ${limit.start.toFixed(3)} s)`,
    ours.seconds.toFixed(3),
    limit.seconds.toFixed(3),
    ratio(ours.seconds, limit.seconds),
  );

  // 3. End to end.
  log("end-to-end install");
  const e2e = await median(
    RUNS,
    () => fresh(installDir),
    () => pyprime("install", fx.gz, "--install-dir", installDir, "--no-bin", "-q"),
  );
  const baseline = await median(RUNS, () => fresh(dest), () => [
    "sh",
    "-c",
    `tar -xzf "$0" -C "$1" && "$1/python/bin/python3" -m compileall -q -j0 "$1/python/lib/python${tag}"`,
    fx.gz,
    dest,
  ], isolated);
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
    const compiled = await median(RUNS * 4, () => Promise.resolve(), run(python));
    const uncompiled = await median(RUNS * 4, () => Promise.resolve(), run(bare));
    row(
      `startup ${label} (ms): uncompiled / compiled`,
      (compiled.seconds * 1000).toFixed(1),
      (uncompiled.seconds * 1000).toFixed(1),
      ratio(uncompiled.seconds, compiled.seconds),
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

/** Sum of per-file compile CPU time in one process, divided by the CPUs, plus one start. */
async function physicalLimit(py: string, stdlib: string) {
  const script = `
import marshal, os, sys, time
total = 0.0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for f in files:
        if not f.endswith(".py"):
            continue
        p = os.path.join(root, f)
        t = time.process_time()
        try:
            data = open(p, "rb").read()
            code = compile(data, p, "exec", dont_inherit=True)  # what SourceLoader.source_to_code does
            marshal.dumps(code)
        except Exception:
            pass
        total += time.process_time() - t
print(total)
`;
  const out = await new Deno.Command(py, {
    args: ["-I", "-B", "-c", script, stdlib],
    stdout: "piped",
  })
    .output();
  const cpu = Number(new TextDecoder().decode(out.stdout).trim());
  const start =
    (await median(5, () => Promise.resolve(), () => [py, "-I", "-B", "-c", "pass"])).seconds;
  return { cpu, start, seconds: cpu / CPUS + start };
}
