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
import { isAbsolute, join, resolve } from "node:path";
import { CompileError, refusedPath } from "../errors.ts";
import { WORKER_HELLO, WORKER_SOURCE } from "./worker.ts";

/** How a `.pyc` is checked against its source (PEP 552). */
export type InvalidationMode = "timestamp" | "checked-hash" | "unchecked-hash";

/** What to compile and how; see {@link compileTree}. */
export interface CompileOptions {
  /** Interpreter to run the workers with. It is resolved with Deno.realPath; if `confineTo` is set, the real path must lie inside realPath(confineTo), else CompileError. */
  python: string;
  /** A directory the interpreter's real path must lie in (the staging dir of an install). */
  confineTo?: string;
  /** Absolute directories (walked recursively, skipping __pycache__) or single .py files. */
  roots: string[];
  /**
   * Record source paths as if `from` were `to` (the staging dir vs the final install
   * dir): used as the file name given to `compile()` (py_compile's `dfile`), so
   * co_filename and tracebacks show the final path. (On import CPython also points
   * co_filename at the source it found; this matters for loads without the source.)
   */
  ddir?: { from: string; to: string };
  /** Number of workers; defaults to `navigator.hardwareConcurrency`. */
  jobs?: number;
  /** Subset of [0,1,2], default [0]; writes .pyc, .opt-1.pyc, .opt-2.pyc. */
  optimize?: number[];
  /** Defaults to "timestamp" (the CLI picks checked-hash when SOURCE_DATE_EPOCH is set). */
  invalidationMode?: InvalidationMode;
  /**
   * Tested against absolute paths; matching files and directories are skipped.
   * Directories are tested with a trailing `/`, so `/test/` prunes a `test` folder.
   */
  exclude?: RegExp[];
  /** Per file, default 60_000; a timeout is fatal (CompileError naming the file). */
  timeoutMs?: number;
  /** Abort kills all workers and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Called with the number of files answered so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Test hooks, not for production use: `onSpawn` receives each worker's pid;
   * a worker stalls forever on a file whose basename is `stallOn`.
   */
  testHooks?: { onSpawn?: (pid: number) => void; stallOn?: string };
}

/** A source the interpreter could not compile (syntax error, unreadable, …). */
export interface CompileFailure {
  /** Absolute path of the source, as walked. */
  path: string;
  /** `ExceptionType: message`, e.g. `SyntaxError: invalid syntax (x.py, line 3)`. */
  error: string;
}

/** The outcome of {@link compileTree}. */
export interface CompileReport {
  /** Sources handled: compiled plus failed. */
  files: number;
  /** Sources whose `.pyc` files were all written. */
  compiled: number;
  /** Sources that failed; they do not make the run fail. */
  failed: CompileFailure[];
  /** Entries not compiled: matched by `exclude` (files or whole folders) or symlinked `.py` files. */
  skipped: number;
  /** Wall time of the whole run. */
  seconds: number;
  /** Worker processes started. */
  workers: number;
}

/**
 * Files a worker is sent ahead of its answers: its queue is topped up to
 * PIPELINE_DEPTH whenever it drains to {@link PIPELINE_REFILL}, so a path is
 * always waiting in the pipe and each write carries several paths. Deeper queues
 * would only lengthen the tail at the end of the run.
 */
export const PIPELINE_DEPTH = 6;
/** Queue length at which a worker's queue is topped up again. */
export const PIPELINE_REFILL = 1;

/**
 * The whole environment of a worker. PYTHONHASHSEED=0 fixes the order in which
 * Python < 3.11 marshals frozenset constants; nothing else is inherited.
 */
export const WORKER_ENV: Readonly<Record<string, string>> = { PYTHONHASHSEED: "0" };

/**
 * `-I` (isolated mode) for CPython 3.11 and later, whose marshal output does not
 * depend on string hashes. Before 3.11 frozenset constants are written in hash order,
 * so those workers need `PYTHONHASHSEED=0`, which `-I` (through `-E`) would ignore:
 * they get `-s` and the otherwise empty environment instead. The version is read
 * from the resolved interpreter's name (`python3.12`, `python3.13t`); an unknown
 * name gets the form that is reproducible everywhere.
 */
export function isolationFlags(realPython: string): string[] {
  const m = /python(\d+)\.(\d+)t?$/.exec(realPython);
  const modern = m !== null && (Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 11));
  return modern ? ["-I"] : ["-s"];
}

const DEFAULT_TIMEOUT_MS = 60_000;
const STDERR_TAIL_BYTES = 4096;
const EXIT_GRACE_MS = 2_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A source to compile. */
interface Source {
  path: string;
  size: number;
}

/** The sources found under the roots. */
interface Collected {
  sources: Source[];
  /** Paths the line protocol cannot carry; reported as failures. */
  unsendable: string[];
  skipped: number;
}

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
  options.signal?.throwIfAborted();
  // Workers boot while the tree is walked: the walk is about as long as a start-up.
  const pool = new Pool(python, settings, options);
  try {
    pool.spawn(settings.jobs);
    const collected = collectSources(options.roots, options.exclude ?? []);
    const failed = collected.unsendable.map((path) => ({
      path,
      error: "path contains a newline, which the worker protocol cannot carry",
    }));
    const results = await pool.run(collected.sources);
    failed.push(...results.failed);
    const files = collected.sources.length + collected.unsendable.length;
    return {
      files,
      compiled: files - failed.length,
      failed,
      skipped: collected.skipped,
      seconds: (performance.now() - started) / 1000,
      workers: pool.size,
    };
  } finally {
    await pool.destroy();
  }
}

/**
 * Finds the interpreter of the installation that contains `path`: the nearest
 * ancestor (or `path` itself) holding `bin/python3` and a `lib/python3.*` folder.
 * The filesystem root is not considered: with a merged `/usr` it looks like an
 * installation, and a tree under no installation should not get the system Python.
 *
 * @example
 * ```ts
 * await findInterpreterFor("/opt/py/lib/python3.12/json"); // "/opt/py/bin/python3"
 * ```
 */
export async function findInterpreterFor(path: string): Promise<string | undefined> {
  let dir = await absoluteDir(path);
  while (dir !== undefined) {
    const parent = join(dir, "..");
    if (parent === dir) return undefined;
    const candidate = join(dir, "bin", "python3");
    if (await isFile(candidate) && await hasStdlibDir(join(dir, "lib"))) return candidate;
    dir = parent;
  }
  return undefined;
}

async function absoluteDir(path: string): Promise<string | undefined> {
  const resolved = resolve(path);
  const info = await statOrUndefined(resolved);
  if (info === undefined) return undefined;
  return info.isDirectory ? resolved : join(resolved, "..");
}

/** Deno.stat, with `undefined` for a missing or unreadable path; a path Deno refuses throws. */
async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (refusedPath(err)) throw fsError(`Cannot read ${path}`, err);
    return undefined;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isFile ?? false;
}

async function hasStdlibDir(lib: string): Promise<boolean> {
  try {
    for await (const entry of Deno.readDir(lib)) {
      if (/^python3\.\d+t?$/.test(entry.name) && await isDir(join(lib, entry.name))) return true;
    }
  } catch {
    // no lib folder: not an installation
  }
  return false;
}

async function isDir(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory ?? false;
}

/** Options after defaults and checks. */
interface Settings {
  jobs: number;
  levels: number[];
  mode: InvalidationMode;
  timeoutMs: number;
  ddirFrom: string;
  ddirTo: string;
}

function validate(options: CompileOptions): Settings {
  const jobs = options.jobs ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new CompileError(`Invalid number of bytecode workers: ${jobs}`);
  }
  const levels = [...new Set(options.optimize ?? [0])].sort();
  if (levels.length === 0 || levels.some((l) => l !== 0 && l !== 1 && l !== 2)) {
    throw new CompileError(`Invalid optimize levels ${JSON.stringify(options.optimize)}`, {
      hint: "use a non-empty subset of 0, 1, 2",
    });
  }
  const mode = options.invalidationMode ?? "timestamp";
  if (!["timestamp", "checked-hash", "unchecked-hash"].includes(mode)) {
    throw new CompileError(`Invalid invalidation mode ${JSON.stringify(mode)}`);
  }
  for (const root of options.roots) {
    if (!isAbsolute(root)) throw new CompileError(`Cannot compile ${root}: not an absolute path`);
  }
  const { from = "", to = "" } = options.ddir ?? {};
  for (const dir of [from, to]) {
    if (/[\n\0]/.test(dir) || (dir !== "" && !isAbsolute(dir))) {
      throw new CompileError(`Invalid ddir ${JSON.stringify(dir)}: not a plain absolute path`);
    }
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new CompileError(`Invalid per-file timeout: ${timeoutMs} ms`);
  return { jobs, levels, mode, timeoutMs, ddirFrom: from, ddirTo: to };
}

async function resolveInterpreter(python: string, confineTo?: string): Promise<string> {
  let real: string;
  try {
    real = await Deno.realPath(python);
  } catch (err) {
    throw new CompileError(`Cannot find interpreter ${python}: ${(err as Error).message}`, {
      cause: err,
      hint: "pass an existing python executable",
    });
  }
  if (confineTo === undefined) return real;
  let root: string;
  try {
    root = await Deno.realPath(confineTo);
  } catch (err) {
    throw new CompileError(`Cannot resolve ${confineTo}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!real.startsWith(root.endsWith("/") ? root : root + "/")) {
    throw new CompileError(
      `Refusing to run interpreter ${python}: it resolves to ${real}, outside ${root}`,
      { hint: "the installation's bin/python3 must not link outside the installation" },
    );
  }
  return real;
}

/** Walks the roots; sync calls because they are several times cheaper than async ones here. */
function collectSources(roots: string[], exclude: RegExp[]): Collected {
  const out: Collected = { sources: [], unsendable: [], skipped: 0 };
  const seen = new Set<string>();
  const excluded = (path: string) => exclude.some((re) => path.search(re) >= 0);
  const add = (path: string, size: number) => {
    if (seen.has(path)) return;
    seen.add(path);
    if (path.includes("\n")) out.unsendable.push(path);
    else out.sources.push({ path, size });
  };
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch (err) {
      throw fsError(`Cannot list ${dir}`, err);
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) {
        if (entry.name === "__pycache__") continue;
        if (excluded(path + "/")) out.skipped++;
        else walk(path);
      } else if (entry.name.endsWith(".py")) {
        if (excluded(path) || !entry.isFile) out.skipped++;
        else add(path, sizeOf(path));
      }
    }
  };
  for (const root of roots) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(root);
    } catch (err) {
      throw fsError(`Cannot compile ${root}`, err);
    }
    const path = join(root);
    if (info.isDirectory) {
      if (excluded(path.endsWith("/") ? path : path + "/")) out.skipped++;
      else walk(path);
    } else if (excluded(path)) out.skipped++;
    else add(path, info.size);
  }
  // Largest first: the big files start early and small ones fill the gaps at the end.
  out.sources.sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  return out;
}

/** A CompileError for a failed filesystem call, explaining paths Deno refuses. */
function fsError(what: string, err: unknown): CompileError {
  const refused = refusedPath(err);
  if (refused) return new CompileError(refused.message, { hint: refused.hint, cause: err });
  return new CompileError(`${what}: ${(err as Error).message}`, { cause: err });
}

/** The size used to order work; a file that vanished is still sent, to be reported. */
function sizeOf(path: string): number {
  try {
    return Deno.lstatSync(path).size;
  } catch {
    return 0;
  }
}

/** What a {@link Pool} run returns. */
interface PoolResult {
  failed: CompileFailure[];
}

/** One interpreter process and the files it has been sent but not yet answered. */
class Worker {
  readonly child: Deno.ChildProcess;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Indexes of the files sent and not answered; the first is being compiled. */
  readonly inflight: number[] = [];
  /** When the first of `inflight` became the one being compiled. */
  headSince = 0;
  hello = false;
  closing = false;
  stderrTail = new Uint8Array(0);
  /** Settles when stdout and stderr are drained and the process is reaped. */
  readonly finished: Promise<Deno.CommandStatus>;

  constructor(
    child: Deno.ChildProcess,
    onLine: (w: Worker, line: string) => void,
    onEnd: (w: Worker) => void,
  ) {
    this.child = child;
    this.writer = child.stdin.getWriter();
    const stdout = this.#readLines(onLine).catch(() => {}).finally(() => onEnd(this));
    const stderr = this.#readStderr().catch(() => {});
    this.finished = Promise.all([stdout, stderr]).then(() => child.status);
  }

  get pid(): number {
    return this.child.pid;
  }

  send(lines: Uint8Array): void {
    // A write to a dead worker fails; its stdout EOF reports the death.
    this.writer.write(lines).catch(() => {});
  }

  kill(): void {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.writer.close().catch(() => {});
  }

  stderrText(): string {
    return decoder.decode(this.stderrTail).trim();
  }

  async #readLines(onLine: (w: Worker, line: string) => void): Promise<void> {
    const reader = this.child.stdout.getReader();
    let pending: Uint8Array | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      let data = value;
      if (pending) {
        data = new Uint8Array(pending.length + value.length);
        data.set(pending);
        data.set(value, pending.length);
      }
      let start = 0;
      for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
        onLine(this, decoder.decode(data.subarray(start, nl)));
        start = nl + 1;
      }
      pending = start < data.length ? data.slice(start) : undefined;
    }
  }

  async #readStderr(): Promise<void> {
    // Drained continuously: a full stderr pipe would block the worker.
    for await (const chunk of this.child.stderr) {
      const joined = new Uint8Array(this.stderrTail.length + chunk.length);
      joined.set(this.stderrTail);
      joined.set(chunk, this.stderrTail.length);
      this.stderrTail = joined.slice(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    }
  }
}

/** The workers of one {@link compileTree} call and the dispatch of files to them. */
class Pool {
  readonly #python: string;
  readonly #settings: Settings;
  readonly #options: CompileOptions;
  readonly #workers: Worker[] = [];
  #sources: Source[] = [];
  #next = 0;
  #done = 0;
  #failed: CompileFailure[] = [];
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
    ];
    for (let i = 0; i < count; i++) {
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(this.#python, {
          args,
          clearEnv: true,
          env: WORKER_ENV,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      } catch (err) {
        throw new CompileError(`Cannot start ${this.#python}: ${(err as Error).message}`, {
          cause: err,
          hint: "check that the interpreter exists and is executable",
        });
      }
      const worker = new Worker(
        child,
        (w, line) => this.#onLine(w, line),
        (w) => this.#onEnd(w),
      );
      this.#workers.push(worker);
      this.#options.testHooks?.onSpawn?.(child.pid);
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
  #fill(worker: Worker): void {
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

  #onLine(worker: Worker, line: string): void {
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
    if (space < 0 || Number(line.slice(0, space)) !== index || !/^(ok|err )/.test(status)) {
      this.#fail(this.#protocolError(worker, `unexpected reply ${JSON.stringify(line)}`));
      return;
    }
    worker.inflight.shift();
    worker.headSince = performance.now();
    if (status !== "ok") {
      this.#failed.push({ path: this.#sources[index].path, error: unescape(status.slice(4)) });
    }
    this.#done++;
    this.#progress();
    this.#fill(worker);
    this.#maybeFinish();
  }

  #protocolError(worker: Worker, what: string): CompileError {
    return new CompileError(
      `Bytecode worker ${worker.pid} (${this.#python}) broke the protocol: ${what}`,
      { hint: "check that the interpreter is a working CPython 3.7 or newer" },
    );
  }

  /** stdout closed: expected after close(), a crash otherwise. */
  #onEnd(worker: Worker): void {
    if (this.#settled || (worker.closing && worker.inflight.length === 0)) return;
    const index = worker.inflight[0];
    const failure = this.#exitDescription(worker).then((how) => {
      const doing = !worker.hello
        ? `before it started (${this.#python})`
        : index === undefined
        ? "while idle"
        : `while compiling ${this.#sources[index].path}`;
      return new CompileError(
        `Bytecode worker ${worker.pid} died ${doing}: ${how}${stderrOf(worker)}`,
        {
          hint: worker.hello
            ? "the interpreter crashed on this file; exclude it with --exclude"
            : "check that the interpreter runs: it must be CPython 3.7 or newer",
        },
      );
    });
    // Settle now so no other event wins; this worker is spared the kill so its
    // real exit status can be reported.
    this.#failWith(failure, worker);
  }

  async #exitDescription(worker: Worker): Promise<string> {
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
      if (bad < 0) return this.#resolve({ failed: this.#failed });
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
  #failWith(error: Promise<unknown>, spare?: Worker): void {
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

function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "r" ? "\r" : c));
}

function describeStatus(status: Deno.CommandStatus): string {
  return status.signal ? `killed by signal ${status.signal}` : `exited with status ${status.code}`;
}

/** The tail of a worker's stderr as message lines, or nothing. */
function stderrOf(worker: Worker): string {
  const tail = worker.stderrText();
  if (!tail) return "";
  const lines = tail.split("\n").slice(-10).map((l) => "  " + l);
  return `\nworker stderr (last lines):\n${lines.join("\n")}`;
}
