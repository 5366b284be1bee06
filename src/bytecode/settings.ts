/**
 * The types and constants every bytecode stage shares: what to compile, how, and the
 * report; the workers' environment and isolation flags.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { CompileError } from "../errors.ts";

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
  /**
   * `compile` (default) writes every requested level. `reuse` keeps the `.pyc` a tree
   * already has when they are current for this interpreter, removes the stale, foreign
   * and sourceless ones, and compiles only what is missing (installing an archive that
   * ships bytecode). `verify` writes nothing: a source without a current `.pyc` (that
   * compiles) is a failure (`pyprime pack` refusing an uncompiled installation).
   */
  action?: "compile" | "reuse" | "verify" | "update";
  /** Called with the number of files answered so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Test hooks, not for production use: `onSpawn` receives each worker's pid;
   * a worker stalls forever on a file whose basename is `stallOn`; `reverse` sends the
   * files in the reverse of the usual (largest first) order.
   */
  testHooks?: { onSpawn?: (pid: number) => void; stallOn?: string; reverse?: boolean };
  /**
   * Stop at the first file that fails for a reason of the environment (an install:
   * a full disk must not give a degraded installation) instead of reporting it.
   */
  stopOnEnvironmentError?: boolean;
  /**
   * With action `reuse`: sources whose bytecode the caller found current already (see
   * `shipped.ts`); they count as reused and are not sent to a worker.
   */
  current?: ReadonlySet<string>;
}

/** A source the interpreter could not compile (syntax error, unreadable, …). */
export interface CompileFailure {
  /** Absolute path of the source, as walked. */
  path: string;
  /** `ExceptionType: message`, e.g. `SyntaxError: invalid syntax (x.py, line 3)`. */
  error: string;
  /**
   * True when the file failed for a reason of the environment (an `OSError` such as a
   * full disk or a read-only folder), not of its source.
   */
  environment?: boolean;
}

/** The outcome of {@link compileTree}. */
export interface CompileReport {
  /** Sources handled: compiled plus failed. */
  files: number;
  /** Sources whose `.pyc` files were all written. */
  compiled: number;
  /** Sources whose existing `.pyc` were all current and kept (action `reuse`/`verify`). */
  reused: number;
  /** `.pyc` files removed because they had no source (action `reuse`). */
  removed?: number;
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

/** Bytecode settings shared by `install` and `compile`. */
export interface BytecodeSettings {
  /** Optimization levels to write. */
  optimize: number[];
  /** `.pyc` invalidation mode. */
  invalidationMode: InvalidationMode;
  /** Worker count. */
  jobs?: number;
  /** Regular expressions of paths to skip. */
  exclude: RegExp[];
  /** Per-file timeout in seconds. */
  timeoutSeconds: number;
}

/** The default per-file compile timeout. */
const DEFAULT_TIMEOUT_MS = 60_000;

/** Options after defaults and checks. */
export interface Settings {
  jobs: number;
  levels: number[];
  mode: InvalidationMode;
  timeoutMs: number;
  ddirFrom: string;
  ddirTo: string;
}

/** Applies defaults to `options` and checks them. */
export function validate(options: CompileOptions): Settings {
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
