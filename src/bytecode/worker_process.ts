/**
 * One bytecode worker process as the pool sees it: its pipes, the files it has been
 * sent and not yet answered, and the tail of its stderr.
 *
 * @module
 */

const STDERR_TAIL_BYTES = 4096;
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

  constructor(
    child: Deno.ChildProcess,
    onLine: (w: WorkerProcess, line: string) => void,
    onEnd: (w: WorkerProcess) => void,
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

  async #readLines(onLine: (w: WorkerProcess, line: string) => void): Promise<void> {
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
