/**
 * `pyprime compile`: bytecode-compile existing trees (an installation, a venv's
 * site-packages) with the interpreter that owns them.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { findInterpreterFor } from "../bytecode/find_python.ts";
import { compileTree } from "../bytecode/pool.ts";
import { writeBytecodeRecord } from "../bytecode/record.ts";
import type { InvalidationMode } from "../bytecode/settings.ts";
import { abortOnSignals } from "../signals.ts";
import { printable, PyprimeError } from "../errors.ts";
import { exists } from "../fs.ts";
import type { Output } from "./output.ts";
import { summarizeCompile } from "./summary.ts";

/** Options of {@link runCompile}, as parsed from the command line. */
export interface RunCompileOptions {
  /** Interpreter to compile with; defaults to the installation containing the first path. */
  python?: string;
  /** Worker count; defaults to the number of CPUs. */
  jobs?: number;
  /** Optimization levels to write; defaults to `[0]`. */
  optimize?: number[];
  /** Defaults to `checked-hash` when SOURCE_DATE_EPOCH is set, else `timestamp`. */
  invalidationMode?: InvalidationMode;
  /** Regular expressions (source text) of paths to skip. */
  exclude?: string[];
  /** Per-file limit; defaults to 60. */
  timeoutSeconds?: number;
  /** `--force`: rewrite every `.pyc`, also the current ones. */
  force?: boolean;
  /** Stops the run; SIGINT/SIGTERM are wired to it when absent. */
  signal?: AbortSignal;
}

/**
 * Compiles `paths` and prints `Bytecode compiled N files in Xs[, M failed]`.
 * Files whose source does not compile do not make it fail; a file that cannot be
 * written (full disk, read-only folder) makes it exit 1 after the others are done; a
 * crashed worker or a timeout throws {@link CompileError}.
 *
 * @returns the process exit code, 0 on success
 * @example
 * ```ts
 * const code = await runCompile(["/opt/py/lib/python3.12"], { optimize: [0, 1] }, new Output());
 * ```
 */
export async function runCompile(
  paths: string[],
  options: RunCompileOptions,
  out: Output,
): Promise<number> {
  await out.ready();
  if (paths.length === 0) {
    throw new PyprimeError("Nothing to compile", {
      exitCode: 2,
      hint: "pass folders or .py files",
    });
  }
  const roots = paths.map((p) => resolve(p));
  for (const [i, root] of roots.entries()) {
    if (!(await exists(root))) {
      throw new PyprimeError(`Cannot compile ${paths[i]}: no such file or folder`, {
        hint: "pass existing folders or .py files",
      });
    }
  }
  const python = options.python === undefined
    ? await findInterpreterFor(roots[0])
    : await onPath(options.python);
  if (python === undefined) {
    throw new PyprimeError(`Cannot find the Python installation that contains ${roots[0]}`, {
      exitCode: 2,
      hint: "pass --python <interpreter> to choose the interpreter that compiles the files",
    });
  }
  const controller = new AbortController();
  const stopListening = options.signal ? () => {} : abortOnSignals(controller);
  const signal = options.signal ?? controller.signal;
  const bar = out.bar("Compiling bytecode", 0, "files");
  try {
    const report = await compileTree({
      python,
      roots,
      jobs: options.jobs,
      optimize: options.optimize,
      invalidationMode: options.invalidationMode ?? defaultInvalidationMode(),
      exclude: (options.exclude ?? []).map(toRegExp),
      timeoutMs: options.timeoutSeconds === undefined ? undefined : options.timeoutSeconds * 1000,
      signal,
      onProgress: (done, total) => bar.update(done, total),
      // As compileall without -f: a .pyc that is current for this interpreter (header,
      // source mtime and size, or hash) is left as it is; nothing else is removed.
      action: options.force ? "compile" : "update",
    });
    bar.stop();
    const installation = options.python === undefined ? recordFolder(roots, python) : undefined;
    if (installation !== undefined) {
      await writeBytecodeRecord(installation, {
        optimize: [...new Set(options.optimize ?? [0])],
        invalidationMode: options.invalidationMode ?? defaultInvalidationMode(),
        exclude: options.exclude ?? [],
      });
    }
    summarizeCompile(report, out, true);
    out.jsonData(report);
    const broken = report.failed.filter((f) => f.environment);
    if (broken.length > 0) {
      out.error(
        `Cannot write the bytecode of ${broken.length.toLocaleString("en-US")} files, e.g. ${
          printable(broken[0].path)
        }: ${printable(broken[0].error)}`,
        "free disk space or make the folders writable, then run pyprime compile again",
      );
      return 1;
    }
    // As `python -m compileall`: any file that did not compile fails the command.
    return report.failed.length > 0 ? 1 : 0;
  } finally {
    bar.stop();
    stopListening();
  }
}

/**
 * The installation whose bytecode record this run rewrites: the one owning the
 * interpreter, when a root is the installation itself or its standard library.
 */
function recordFolder(roots: string[], python: string): string | undefined {
  const installation = dirname(dirname(python));
  const stdlib = new RegExp(`^${escapeRegExp(installation)}/lib/python3\\.\\d+t?/?$`);
  return roots.some((r) => r.replace(/\/+$/, "") === installation || stdlib.test(r))
    ? installation
    : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Resolves a bare command name (`python3.12`) on PATH, like a shell would. */
async function onPath(python: string): Promise<string> {
  if (python.includes("/")) return python;
  let path = "";
  try {
    path = Deno.env.get("PATH") ?? "";
  } catch {
    // no permission to read PATH: take the name as a path
  }
  for (const dir of path.split(":").filter((d) => d !== "")) {
    const candidate = join(dir, python);
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch {
      // not in this folder
    }
  }
  return python;
}

/** `checked-hash` for reproducible builds (SOURCE_DATE_EPOCH set), else `timestamp`. */
function defaultInvalidationMode(): InvalidationMode {
  let epoch: string | undefined;
  try {
    epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  } catch {
    epoch = undefined;
  }
  return epoch ? "checked-hash" : "timestamp";
}

function toRegExp(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new PyprimeError(
      `--exclude ${source} is not a regular expression: ${(err as Error).message}`,
      {
        exitCode: 2,
        hint: "use JavaScript regular expression syntax, e.g. --exclude '/test/'",
      },
    );
  }
}
