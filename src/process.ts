/**
 * Child processes that cannot outlive pyprime or hang it: each one is started as the
 * leader of its own session and process group (through util-linux `setsid` where it
 * exists), so a kill reaches everything it forked that stayed in the group (`sleep &`,
 * `subprocess`), and readers of its pipes can be cancelled once it is gone even when a
 * descendant still holds them open.
 *
 * Limitation: a descendant that leaves the group on purpose (`setsid` itself, a
 * daemonizing double fork) is not reached by the group kill; pyprime still stops
 * waiting for its pipes, so it cannot hang the run.
 *
 * @module
 */
import { concat } from "./bytes.ts";

/** Where util-linux puts `setsid`; absent on macOS, where children share pyprime's group. */
const SETSID = "/usr/bin/setsid";

let setsidAvailable: boolean | undefined;

function hasSetsid(): boolean {
  if (setsidAvailable === undefined) {
    try {
      setsidAvailable = Deno.build.os === "linux" && Deno.statSync(SETSID).isFile;
    } catch {
      setsidAvailable = false;
    }
  }
  return setsidAvailable;
}

/** A child started by {@link spawnGroup}. */
export interface GroupChild {
  /** The process. Its pid is also its process group id when `grouped`. */
  child: Deno.ChildProcess;
  /** Whether the child leads its own process group. */
  grouped: boolean;
  /** SIGKILLs the whole group (or the child alone without `setsid`); never throws. */
  kill(): void;
}

/**
 * Spawns `program` with `options` as the leader of a new session and process group.
 *
 * @example
 * ```ts
 * const { child, kill } = spawnGroup("/opt/py/bin/python3", { args: ["-c", "pass"] });
 * ```
 */
export function spawnGroup(program: string, options: Deno.CommandOptions): GroupChild {
  const grouped = hasSetsid();
  // `setsid` execs the program in place: the child is not a group leader yet (it is in
  // pyprime's group), so setsid(2) succeeds without a fork and the pid stays the same.
  const child = grouped
    ? new Deno.Command(SETSID, { ...options, args: [program, ...(options.args ?? [])] }).spawn()
    : new Deno.Command(program, options).spawn();
  const kill = () => {
    if (grouped) {
      try {
        Deno.kill(-child.pid, "SIGKILL");
        return;
      } catch {
        // the group is empty already; fall through for the leader itself
      }
    }
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  };
  return { child, grouped, kill };
}

/** Thrown inside {@link readCapped} when a stream gives more than its cap. */
export class OutputCapError extends Error {
  /** The cap in bytes. */
  readonly cap: number;
  /** Creates the error. */
  constructor(cap: number) {
    super(`more than ${cap} bytes of output`);
    this.name = "OutputCapError";
    this.cap = cap;
  }
}

/**
 * Reads all of `stream` into memory up to `cap` bytes; past the cap it calls
 * `onOverflow` (which should kill the writer) and rejects with {@link OutputCapError}.
 * `cancel` (settled by the caller) stops the read early, returning what was read.
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
  onOverflow: () => void,
  cancel: Promise<unknown>,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const stop = cancel.then(() => ({ done: true as const, value: undefined }));
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), stop]);
      if (done) break;
      size += value.length;
      if (size > cap) {
        onOverflow();
        throw new OutputCapError(cap);
      }
      chunks.push(value);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return concat(chunks, size);
}

/** What {@link runBounded} returns. */
export interface BoundedOutput {
  /** Exit status of the child. */
  status: Deno.CommandStatus;
  /** Its standard output, at most the cap. */
  stdout: Uint8Array;
  /** Its standard error, at most the cap. */
  stderr: Uint8Array;
  /** Set when it was killed because `signal` aborted (a timeout or the user). */
  aborted: boolean;
}

/** After the child exits, how long its pipes may stay open before they are cut. */
const PIPE_GRACE_MS = 200;

/**
 * Runs `program` to completion in its own process group with stdout and stderr
 * capped at `cap` bytes each. On abort of `signal` or output over the cap the group is
 * killed; once the child has exited the group is killed too (nothing it forked may
 * outlive it) and the pipes are read for at most a short grace period, so a
 * descendant holding them cannot make pyprime wait.
 *
 * @throws {OutputCapError} when either stream exceeds `cap`.
 */
export async function runBounded(
  program: string,
  options: Omit<Deno.CommandOptions, "stdout" | "stderr" | "signal">,
  cap: number,
  signal?: AbortSignal,
): Promise<BoundedOutput> {
  const { child, kill } = spawnGroup(program, { ...options, stdout: "piped", stderr: "piped" });
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    kill();
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  let release!: () => void;
  const cut = new Promise<void>((resolve) => release = resolve);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = child.status.then((s) => {
    kill();
    timer = setTimeout(release, PIPE_GRACE_MS);
    return s;
  });
  try {
    const [stdout, stderr] = await Promise.all([
      readCapped(child.stdout, cap, kill, cut),
      readCapped(child.stderr, cap, kill, cut),
    ]);
    return { status: await status, stdout, stderr, aborted };
  } catch (err) {
    kill();
    await status;
    throw err;
  } finally {
    clearTimeout(timer);
    release();
    signal?.removeEventListener("abort", onAbort);
  }
}
