/**
 * One bytecode worker process as the pool sees it: its pipes, the files it has been
 * sent and not yet answered, and the tail of its stderr.
 *
 * @module
 */

import { printable } from "../errors.ts";
import type { GroupChild } from "../process.ts";

const STDERR_TAIL_BYTES = 4096;
/** The longest reply line a worker may write: a path and an error message. */
export const MAX_REPLY_BYTES = 64 * 1024;
/** After the worker exits, how long its pipes may stay open (held by a descendant). */
const PIPE_GRACE_MS = 500;
/** After its stdin is closed, how long a worker may take to exit before it is killed. */
const CLOSE_GRACE_MS = 10_000;
const decoder = new TextDecoder();

/** One interpreter process and the files it has been sent but not yet answered. */
export class WorkerProcess {
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

  /** Set when the worker wrote a reply line over {@link MAX_REPLY_BYTES}. */
  overflowed = false;
  readonly #group: GroupChild;
  #cutPipes: () => void = () => {};
  readonly #cut: Promise<{ done: true; value: undefined }>;
  #timers: ReturnType<typeof setTimeout>[] = [];

  /**
   * Wraps a worker started with `spawnGroup`. Once the worker has exited, its group
   * is killed (nothing it forked outlives it) and its pipes are read for a short grace
   * period only, so a descendant holding them open cannot hang the pool.
   */
  constructor(
    group: GroupChild,
    onLine: (w: WorkerProcess, line: string) => void,
    onEnd: (w: WorkerProcess) => void,
  ) {
    this.#group = group;
    this.child = group.child;
    this.writer = this.child.stdin.getWriter();
    this.#cut = new Promise((resolve) => {
      this.#cutPipes = () => resolve({ done: true, value: undefined });
    });
    const status = this.child.status.then((s) => {
      group.kill();
      this.#timers.push(setTimeout(this.#cutPipes, PIPE_GRACE_MS));
      return s;
    });
    const stdout = this.#readLines(onLine).catch(() => {}).finally(() => onEnd(this));
    const stderr = this.#readStderr().catch(() => {});
    this.finished = Promise.all([stdout, stderr, status]).then(([, , s]) => {
      this.#timers.forEach(clearTimeout);
      return s;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  send(lines: Uint8Array): void {
    // A write to a dead worker fails; its stdout EOF reports the death.
    this.writer.write(lines).catch(() => {});
  }

  /** SIGKILLs the worker and everything in its process group. */
  kill(): void {
    this.#group.kill();
  }

  /** Sends EOF; a worker that does not exit within a grace period is killed. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.writer.close().catch(() => {});
    this.#timers.push(setTimeout(() => this.kill(), CLOSE_GRACE_MS));
  }

  stderrText(): string {
    return decoder.decode(this.stderrTail).trim();
  }

  async #readLines(onLine: (w: WorkerProcess, line: string) => void): Promise<void> {
    const reader = this.child.stdout.getReader();
    let pending: Uint8Array | undefined;
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), this.#cut]);
      if (done) {
        reader.cancel().catch(() => {});
        return;
      }
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
      if (pending && pending.length > MAX_REPLY_BYTES) {
        // A reply that long is not a reply: the worker is killed, its end reported.
        this.overflowed = true;
        this.kill();
        reader.cancel().catch(() => {});
        return;
      }
    }
  }

  async #readStderr(): Promise<void> {
    // Drained continuously: a full stderr pipe would block the worker.
    const reader = this.child.stderr.getReader();
    for (;;) {
      const { value: chunk, done } = await Promise.race([reader.read(), this.#cut]);
      if (done) {
        reader.cancel().catch(() => {});
        return;
      }
      const joined = new Uint8Array(this.stderrTail.length + chunk.length);
      joined.set(this.stderrTail);
      joined.set(chunk, this.stderrTail.length);
      this.stderrTail = joined.slice(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    }
  }
}

/** Undoes the worker's escaping of `\\`, CR and LF in a reply. */
export function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "r" ? "\r" : c));
}

/** "killed by signal X" or "exited with status N". */
export function describeStatus(status: Deno.CommandStatus): string {
  return status.signal ? `killed by signal ${status.signal}` : `exited with status ${status.code}`;
}

/** The tail of a worker's stderr as message lines, or nothing. */
export function stderrOf(worker: WorkerProcess): string {
  const tail = worker.stderrText();
  if (!tail) return "";
  const lines = tail.split("\n").slice(-10).map((l) => "  " + printable(l));
  return `\nworker stderr (last lines):\n${lines.join("\n")}`;
}
