/**
 * Bytecode compilation of whole trees with a pool of long-lived interpreter
 * workers, one per CPU, fed paths on stdin and answering on stdout (the worker
 * source and protocol are in `bytecode_worker.ts`).
 *
 * Speed comes from: workers started before the tree is walked; files sent
 * largest first, a few at a time ({@link PIPELINE_DEPTH}), so no worker waits on
 * a round trip and none holds a long queue at the end; replies batched by the
 * worker, so the coordinator wakes up once per batch, not per file; a single
 * watchdog timer instead of one per file; no cyclic GC in the workers. On the
 * 3.12 fixture's stdlib (686 files, on a tmpfs) a run takes within 10 % of two
 * bare interpreters compiling half of the files each, and 1.13× of (sum of
 * per-file compile CPU) / CPUs (docs/benchmarks.md).
 *
 * Reproducibility: the same tree compiled twice gives the same bytes whatever
 * `jobs` is. Workers run with `PYTHONHASHSEED=0` (before 3.11 marshal writes
 * frozensets in hash order) and neutralise CPython's history-dependent marshal
 * output (see `bytecode_worker.ts`).
 *
 * Isolation: workers get a cleared environment (only {@link WORKER_ENV}), `-I` on
 * CPython 3.11+ (`-s` before, see {@link isolationFlags}), `-S` (no site, no `.pth`),
 * `-B`, `-X utf8` and `-W ignore`. They ignore SIGINT: on Ctrl-C the coordinator
 * aborts and kills them.
 *
 * @module
 */
import { CompileError, printable } from "../errors.ts";
import { spawnGroup } from "../process.ts";
import { collectSources, confineRoots, removeOrphans, type Source } from "./collect.ts";
import { resolveInterpreter } from "./find_python.ts";
import {
  type CompileFailure,
  type CompileOptions,
  type CompileReport,
  isolationFlags,
  PIPELINE_DEPTH,
  PIPELINE_REFILL,
  type Settings,
  validate,
  WORKER_ENV,
} from "./settings.ts";
import { WORKER_HELLO, WORKER_SOURCE } from "./worker.ts";
import {
  describeStatus,
  MAX_REPLY_BYTES,
  stderrOf,
  unescape,
  WorkerProcess,
} from "./worker_process.ts";
const EXIT_GRACE_MS = 2_000;
const encoder = new TextEncoder();

/**
 * Compiles every `.py` under `roots` with workers running `python`, writing
 * `__pycache__/<name>.<tag>[.opt-N].pyc` next to each source. Syntax errors are
 * failures in the report; a crashed worker, a timeout or an abort rejects after
 * every worker has been killed and reaped.
 *
 * Paths containing a newline cannot travel on the line protocol: they are reported
 * as failures (`path contains a newline`), not sent.
 *
 * @example
 * ```ts
 * const report = await compileTree({
 *   python: "/opt/py/bin/python3",
 *   roots: ["/opt/py/lib/python3.12"],
 *   invalidationMode: "checked-hash",
 * });
 * console.log(`${report.compiled} compiled, ${report.failed.length} failed`);
 * ```
 */
export async function compileTree(options: CompileOptions): Promise<CompileReport> {
  const started = performance.now();
  const settings = validate(options);
  options.signal?.throwIfAborted();
  const python = await resolveInterpreter(options.python, options.confineTo);
  if (options.confineTo !== undefined) confineRoots(options.roots, options.confineTo);
  options.signal?.throwIfAborted();
  // Workers boot while the tree is walked: the walk is about as long as a start-up.
  const pool = new Pool(python, settings, options);
  try {
    const reuse = options.action === "reuse";
    const current = reuse ? options.current : undefined;
    // A pack's install sends a few files: one worker, more only if the walk finds work.
    pool.spawn(current ? 1 : settings.jobs);
    const collected = collectSources(options.roots, options.exclude ?? [], reuse, current);
    const failed = collected.unsendable.map((path) => ({
      path,
      error: "path contains a newline, which the worker protocol cannot carry",
    }));
    if (options.testHooks?.reverse) collected.sources.reverse();
    const send = current
      ? collected.sources.filter((s) => !current.has(s.path))
      : collected.sources;
    if (current && send.length > PIPELINE_DEPTH) pool.spawn(settings.jobs - 1);
    const results = await pool.run(send);
    failed.push(...results.failed);
    const files = collected.sources.length + collected.unsendable.length;
    const reused = results.reused + collected.sources.length - send.length;
    return {
      files,
      compiled: files - failed.length - reused,
      reused,
      ...(reuse ? { removed: removeOrphans(collected.pycs, collected.sources) } : {}),
      failed,
      skipped: collected.skipped,
      seconds: (performance.now() - started) / 1000,
      workers: pool.size,
    };
  } finally {
    await pool.destroy();
  }
}

/** What a {@link Pool} run returns. */
interface PoolResult {
  failed: CompileFailure[];
  reused: number;
}

/** The workers of one {@link compileTree} call and the dispatch of files to them. */
class Pool {
  readonly #python: string;
  readonly #settings: Settings;
  readonly #options: CompileOptions;
  readonly #workers: WorkerProcess[] = [];
  #sources: Source[] = [];
  #next = 0;
  #done = 0;
  #failed: CompileFailure[] = [];
  #reused = 0;
  #settled = false;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #resolve: (r: PoolResult) => void = () => {};
  #reject: (e: unknown) => void = () => {};

  constructor(python: string, settings: Settings, options: CompileOptions) {
    this.#python = python;
    this.#settings = settings;
    this.#options = options;
  }

  get size(): number {
    return this.#workers.length;
  }

  spawn(count: number): void {
    const { mode, levels, ddirFrom, ddirTo } = this.#settings;
    const args = [
      // -S: no site, no .pth files; -B: codec imports must not write .pyc next to
      // the files being compiled; -X utf8: paths decode the same whatever the locale.
      ...isolationFlags(this.#python),
      ...["-S", "-B", "-X", "utf8", "-W", "ignore", "-c", WORKER_SOURCE],
      ...[mode, levels.join(","), ddirFrom, ddirTo, this.#options.testHooks?.stallOn ?? ""],
      this.#options.action ?? "compile",
    ];
    for (let i = 0; i < count; i++) {
      let group;
      try {
        // Its own process group: a kill reaches whatever the worker forked.
        group = spawnGroup(this.#python, {
          args,
          clearEnv: true,
          env: WORKER_ENV,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        });
      } catch (err) {
        throw new CompileError(`Cannot start ${this.#python}: ${(err as Error).message}`, {
          cause: err,
          hint: "check that the interpreter exists and is executable",
        });
      }
      const worker = new WorkerProcess(
        group,
        (w, line) => this.#onLine(w, line),
        (w) => this.#onEnd(w),
      );
      this.#workers.push(worker);
      this.#options.testHooks?.onSpawn?.(group.child.pid);
    }
  }

  run(sources: Source[]): Promise<PoolResult> {
    this.#sources = sources;
    const result = new Promise<PoolResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.#options.signal;
    const onAbort = () =>
      this.#fail(signal?.reason ?? new CompileError("Bytecode compilation aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    result.catch(() => {}).finally(() => signal?.removeEventListener("abort", onAbort));
    if (signal?.aborted) onAbort();
    // One periodic check instead of a timer per file: thousands of timers cost more.
    const period = Math.min(1000, Math.max(10, this.#settings.timeoutMs / 10));
    this.#watchdog = setInterval(() => this.#checkTimeouts(), period);
    this.#progress();
    // Surplus workers (tiny trees) get EOF now.
    for (const worker of this.#workers.slice(sources.length)) worker.close();
    for (const worker of this.#workers) this.#fill(worker);
    this.#maybeFinish();
    return result;
  }

  /** Kills whatever is still running and waits until every process is reaped. */
  async destroy(): Promise<void> {
    this.#settled = true;
    clearInterval(this.#watchdog);
    for (const worker of this.#workers) {
      if (!worker.closing) worker.kill();
      worker.writer.abort().catch(() => {});
    }
    await Promise.allSettled(this.#workers.map((w) => w.finished));
  }

  /** Tops the worker's queue up to PIPELINE_DEPTH once it has drained to PIPELINE_REFILL. */
  #fill(worker: WorkerProcess): void {
    if (worker.closing || this.#settled || worker.inflight.length > PIPELINE_REFILL) return;
    if (worker.inflight.length === 0) worker.headSince = performance.now();
    let lines = "";
    while (worker.inflight.length < PIPELINE_DEPTH && this.#next < this.#sources.length) {
      const index = this.#next++;
      worker.inflight.push(index);
      lines += `${index} ${this.#sources[index].path}\n`;
    }
    if (lines) worker.send(encoder.encode(lines));
  }

  #checkTimeouts(): void {
    const now = performance.now();
    for (const worker of this.#workers) {
      if (worker.inflight.length === 0 || now - worker.headSince <= this.#settings.timeoutMs) {
        continue;
      }
      const path = this.#sources[worker.inflight[0]].path;
      const seconds = this.#settings.timeoutMs / 1000;
      this.#fail(
        new CompileError(`Bytecode compilation of ${path} timed out after ${seconds}s`, {
          hint: "exclude the file with --exclude or raise --compile-timeout",
        }),
      );
      return;
    }
  }

  #onLine(worker: WorkerProcess, line: string): void {
    if (this.#settled) return;
    if (!worker.hello) {
      if (line !== WORKER_HELLO) {
        this.#fail(this.#protocolError(worker, `unexpected first line ${JSON.stringify(line)}`));
        return;
      }
      worker.hello = true;
      worker.headSince = performance.now();
      return;
    }
    const space = line.indexOf(" ");
    const index = worker.inflight[0];
    const status = line.slice(space + 1);
    if (
      space < 0 || Number(line.slice(0, space)) !== index ||
      !/^(ok$|reused$|err |env )/.test(status)
    ) {
      this.#fail(this.#protocolError(worker, `unexpected reply ${JSON.stringify(line)}`));
      return;
    }
    worker.inflight.shift();
    worker.headSince = performance.now();
    if (status.startsWith("env ")) {
      const path = this.#sources[index].path;
      const error = unescape(status.slice(4));
      if (this.#options.stopOnEnvironmentError) {
        this.#fail(
          new CompileError(`Cannot write the bytecode of ${printable(path)}: ${printable(error)}`, {
            hint: "free disk space, or make the folder writable and a real folder; then run again",
          }),
        );
        return;
      }
      this.#failed.push({ path, error, environment: true });
    } else if (status === "reused") this.#reused++;
    else if (status !== "ok") {
      this.#failed.push({ path: this.#sources[index].path, error: unescape(status.slice(4)) });
    }
    this.#done++;
    this.#progress();
    this.#fill(worker);
    this.#maybeFinish();
  }

  #protocolError(worker: WorkerProcess, what: string): CompileError {
    return new CompileError(
      `Bytecode worker ${worker.pid} (${this.#python}) broke the protocol: ${what}`,
      { hint: "check that the interpreter is a working CPython 3.7 or newer" },
    );
  }

  /** stdout closed: expected after close(), a crash otherwise. */
  #onEnd(worker: WorkerProcess): void {
    if (this.#settled || (worker.closing && worker.inflight.length === 0)) return;
    const index = worker.inflight[0];
    const failure = this.#exitDescription(worker).then((status) => {
      const how = worker.overflowed
        ? `it wrote a reply line over ${MAX_REPLY_BYTES} bytes and was killed`
        : status;
      const doing = !worker.hello
        ? `before it started (${this.#python})`
        : index === undefined
        ? "while idle"
        : `while compiling ${this.#sources[index].path}`;
      const hint = worker.hello
        ? "the interpreter crashed on this file; exclude it with --exclude"
        : "check that the interpreter runs: it must be CPython 3.7 or newer";
      return new CompileError(
        `Bytecode worker ${worker.pid} died ${doing}: ${how}${stderrOf(worker)}`,
        { hint },
      );
    });
    // Settle now so no other event wins; this worker is spared the kill so its
    // real exit status can be reported.
    this.#failWith(failure, worker);
  }

  async #exitDescription(worker: WorkerProcess): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<undefined>((done) => {
      timer = setTimeout(() => done(undefined), EXIT_GRACE_MS);
    });
    const status = await Promise.race([worker.child.status, grace]);
    clearTimeout(timer);
    if (status !== undefined) return describeStatus(status);
    worker.kill();
    return "it closed its stdout but kept running";
  }

  #progress(): void {
    try {
      this.#options.onProgress?.(this.#done, this.#sources.length);
    } catch (err) {
      this.#fail(err);
    }
  }

  #maybeFinish(): void {
    if (this.#settled || this.#done < this.#sources.length) return;
    this.#settled = true;
    clearInterval(this.#watchdog);
    for (const worker of this.#workers) worker.close();
    // Every file is written; a worker failing at exit is still a broken interpreter.
    Promise.all(this.#workers.map((w) => w.finished)).then((statuses) => {
      const bad = statuses.findIndex((s) => !s.success);
      if (bad < 0) return this.#resolve({ failed: this.#failed, reused: this.#reused });
      const worker = this.#workers[bad];
      this.#reject(
        new CompileError(
          `Bytecode worker ${worker.pid} failed at exit: ${describeStatus(statuses[bad])}${
            stderrOf(worker)
          }`,
        ),
      );
    }, this.#reject);
  }

  #fail(error: unknown): void {
    this.#failWith(Promise.resolve(error));
  }

  /** Settles the run as failed: kill everything (but `spare`), reject once all are reaped. */
  #failWith(error: Promise<unknown>, spare?: WorkerProcess): void {
    if (this.#settled) return;
    this.#settled = true;
    clearInterval(this.#watchdog);
    for (const worker of this.#workers) {
      if (worker !== spare) worker.kill();
    }
    Promise.all([error, ...this.#workers.map((w) => w.finished.catch(() => {}))]).then(
      ([err]) => this.#reject(err),
    );
  }
}
