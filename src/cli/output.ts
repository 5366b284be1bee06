/**
 * Everything pyprime prints goes through here: data on stdout, logs and progress on
 * stderr, progress bars only on a TTY, `--quiet`, `--verbose`, `--json`, `NO_COLOR`.
 *
 * @module
 */
import type cliProgressModule from "cli-progress";
import { envValue } from "../env.ts";
import { BrokenPipeError, PyprimeError } from "../errors.ts";

/** How chatty the run is. */
export type Verbosity = "quiet" | "normal" | "verbose";

/** Options of an {@link Output}. */
export interface OutputOptions {
  /** `quiet` prints errors only, `verbose` adds detail lines. */
  verbosity?: Verbosity;
  /** Print one JSON document on stdout instead of text data. */
  json?: boolean;
  /** Colour stderr; defaults to a TTY without `NO_COLOR`. */
  color?: boolean;
  /** Show progress bars; defaults to stderr being a TTY and not quiet/json. */
  progress?: boolean;
  /** Write nothing on stdout (a step of a command that prints its own document). */
  noStdout?: boolean;
}

/** A progress bar, or nothing when progress is off. */
export interface Progress {
  /** Moves the bar to `value` (of `total`, if known). */
  update(value: number, total?: number): void;
  /** Removes the bar. */
  stop(): void;
}

const encoder = new TextEncoder();

/** What a bar needs: cli-progress and the Node stderr stream it draws on. */
interface BarKit {
  cliProgress: typeof cliProgressModule;
  stderr: NodeJS.WriteStream;
}

let barKit: Promise<BarKit> | undefined;

/**
 * cli-progress is a CommonJS package, so it is imported only by runs that draw bars
 * (it took about 10 ms of the ~55 ms start of `pyprime --version`).
 */
function loadBarKit(): Promise<BarKit> {
  barKit ??= Promise.all([import("cli-progress"), import("node:process")]).then((
    [cliProgress, process],
  ) => ({ cliProgress: cliProgress.default, stderr: process.default.stderr }));
  return barKit;
}

/** Writes all of `text` to stdout; a closed pipe or a full disk is a clear error. */
function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  try {
    for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
  } catch (cause) {
    if (cause instanceof Deno.errors.BrokenPipe) throw new BrokenPipeError({ cause });
    throw new PyprimeError(`Cannot write to standard output: ${(cause as Error).message}`, {
      cause,
      hint: "send the output to a file on a disk with free space, or to a pipe that reads it",
    });
  }
}

/** The terminal's width (stderr's, else stdout's), 80 when neither is a terminal. */
function terminalColumns(): number {
  for (const rid of [Deno.stderr, Deno.stdout]) {
    try {
      if (rid.isTerminal()) return Deno.consoleSize().columns || 80;
    } catch {
      // not a terminal after all
    }
  }
  return 80;
}

/**
 * Whether stderr gets colour, by the conventions uv and most CLIs follow: `NO_COLOR`
 * (any value) or `FORCE_COLOR=0|false` turn it off; `FORCE_COLOR` or `CLICOLOR_FORCE`
 * (other than `0`) turn it on even without a terminal; otherwise a terminal whose
 * `TERM` is not `dumb`.
 *
 * @example
 * ```ts
 * colorWanted(Deno.stderr.isTerminal());
 * ```
 */
export function colorWanted(tty: boolean): boolean {
  const force = envValue("FORCE_COLOR");
  if (envValue("NO_COLOR") !== undefined || force === "0" || force === "false") return false;
  const cliColorForce = envValue("CLICOLOR_FORCE");
  if (force !== undefined || (cliColorForce !== undefined && cliColorForce !== "0")) return true;
  return tty && envValue("TERM") !== "dumb";
}

/**
 * The run's printer.
 *
 * @example
 * ```ts
 * const out = new Output({ verbosity: "normal" });
 * out.info("Installed cpython-3.12.1-linux-x86_64-gnu");
 * out.data("/home/me/.local/share/pyprime/python/cpython-3.12.1-linux-x86_64-gnu/bin/python3");
 * ```
 */
export class Output {
  /** The verbosity in force. */
  readonly verbosity: Verbosity;
  /** Whether stdout gets one JSON document. */
  readonly json: boolean;
  /** Whether stderr is coloured. */
  readonly color: boolean;
  /** Whether progress bars are drawn. */
  readonly progress: boolean;
  /** Set by {@link Output.ready} when bars are drawn. */
  #kit: BarKit | undefined;
  readonly #noStdout: boolean;
  #barActive = false;

  /** Creates the printer; defaults follow the terminal and `NO_COLOR`. */
  constructor(options: OutputOptions = {}) {
    this.verbosity = options.verbosity ?? "normal";
    this.json = options.json ?? false;
    const tty = Deno.stderr.isTerminal();
    this.color = options.color ?? colorWanted(tty);
    this.progress = options.progress ??
      (tty && this.verbosity !== "quiet" && !this.json && envValue("TERM") !== "dumb");
    this.#noStdout = options.noStdout ?? false;
  }

  /**
   * The printer of a step run by another command (`upgrade` running `install`): the same
   * stderr, and stdout only in text mode, so the command's own JSON stays one document.
   */
  nested(): Output {
    return new Output({
      verbosity: this.verbosity,
      json: this.json,
      color: this.color,
      progress: this.progress,
      noStdout: this.json,
    });
  }

  /**
   * Loads what progress bars need, when this run draws them; commands that draw bars
   * await it first. Without it, {@link Output.bar} draws nothing.
   */
  async ready(): Promise<void> {
    if (this.progress && this.#kit === undefined) this.#kit = await loadBarKit();
  }

  /** Writes one line of data to stdout (text mode only). */
  data(line: string): void {
    if (!this.json && !this.#noStdout) writeStdout(line + "\n");
  }

  /** Writes `value` as the run's JSON document on stdout (JSON mode only). */
  jsonData(value: unknown): void {
    if (this.json && !this.#noStdout) {
      writeStdout(JSON.stringify(value, null, 2) + "\n");
    }
  }

  /** A log line on stderr, hidden by `--quiet`. */
  info(line: string): void {
    if (this.verbosity !== "quiet") this.#err(line);
  }

  /** A detail line on stderr, shown with `--verbose`. */
  debug(line: string): void {
    if (this.verbosity === "verbose") this.#err(this.#paint("2", line));
  }

  /** A warning on stderr, hidden by `--quiet`. */
  warn(line: string, hint?: string): void {
    if (this.verbosity === "quiet") return;
    this.#err(`${this.#paint("33;1", "warning")}: ${line}`);
    if (hint) this.#err(`${this.#paint("36;1", "hint")}: ${hint}`);
  }

  /** An error on stderr; always shown. */
  error(line: string, hint?: string, details: string[] = []): void {
    this.#err(`${this.#paint("31;1", "error")}: ${line}`);
    for (const d of details) this.#err(`  ${this.#paint("2", "caused by")}: ${d}`);
    if (hint) this.#err(`${this.#paint("36;1", "hint")}: ${hint}`);
  }

  /**
   * Starts a progress bar labelled `label`, sized to the terminal's width; a no-op
   * object when progress is off. Until the total is known (0), only the count is
   * shown: a bar or a percentage would claim 100 % of nothing.
   */
  bar(label: string, total = 0, unit: "bytes" | "files" = "files"): Progress {
    const kit = this.#kit;
    // One line, one bar: a second bar while one is drawn (several installs in parallel)
    // would overwrite it on the same line, so only the first one draws.
    if (!this.progress || kit === undefined || this.#barActive) return { update() {}, stop() {} };
    this.#barActive = true;
    const release = () => this.#barActive = false;
    const mb = (n: number) => (n / 1048576).toFixed(1);
    // One column spare: a line as wide as the terminal wraps on some of them.
    const columns = terminalColumns() - 1;
    // What follows the label: " 100% 1234.5/1234.5 MiB" or " 12345/12345".
    const numbers = unit === "bytes" ? 25 : 12;
    const room = Math.max(8, Math.min(label.length, columns - numbers - 1));
    const shown = label.length > room ? label.slice(0, room - 1) + "…" : label;
    // The bar only where at least 5 cells fit next to the label and the numbers.
    const barsize = Math.min(40, columns - shown.length - numbers - 3);
    const cells = barsize >= 5 ? " [{bar}]" : "";
    const make = (known: boolean) => {
      const format = !known
        ? unit === "bytes" ? `${shown} {value_mb} MiB` : `${shown} {value}`
        : unit === "bytes"
        ? `${shown}${cells} {percentage}% {value_mb}/{total_mb} MiB`
        : `${shown}${cells} {value}/{total}`;
      return new kit.cliProgress.SingleBar({
        format,
        stream: kit.stderr,
        hideCursor: true,
        clearOnComplete: true,
        barsize: Math.max(barsize, 1),
        linewrap: false,
      }, kit.cliProgress.Presets.shades_classic);
    };
    let bar = make(total > 0);
    let value = 0;
    bar.start(Math.max(total, 1), 0, { value_mb: mb(0), total_mb: mb(total) });
    return {
      update(next: number, newTotal?: number) {
        value = next;
        if (newTotal !== undefined && newTotal > 0 && newTotal !== total) {
          if (total === 0) {
            // The total just became known: from a counter to a bar.
            bar.stop();
            bar = make(true);
            bar.start(newTotal, value, { value_mb: mb(value), total_mb: mb(newTotal) });
          } else bar.setTotal(newTotal);
          total = newTotal;
        }
        bar.update(value, { value_mb: mb(value), total_mb: mb(total) });
      },
      stop() {
        bar.stop();
        release();
      },
    };
  }

  #paint(code: string, text: string): string {
    return this.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  #err(line: string): void {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  }
}
