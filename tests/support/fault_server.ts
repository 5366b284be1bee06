/**
 * A loopback HTTP server for tests: it serves a folder as a download mirror and can
 * misbehave on purpose, per path, in the ways real networks do (error statuses,
 * connections cut mid-body, stalled bodies, lying `Content-Length`, redirects, no
 * range support). It binds 127.0.0.1 on a free port, has no dependencies and no
 * timers: every fault is decided by request counts, so tests are deterministic.
 *
 * @example Serving fixture archives with one flaky file
 * ```ts
 * const server = await startFaultServer({
 *   root: fixturesDir,
 *   faults: { "/20991231/cpython.tar.gz": { cutAt: 0.5, times: 1 } },
 * });
 * try {
 *   // PYPRIME_PYTHON_INSTALL_MIRROR=server.url
 * } finally {
 *   await server.close();
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";

/**
 * How one path misbehaves. Counters are per path and start at zero; a fault with a
 * count applies to the first `n` requests of that path that reach it.
 */
export interface FaultScript {
  /** Answer with this status and a short text body, e.g. `404` or `500`. */
  status?: number;
  /** Only the first `failTimes` requests get `status`; default: every request. */
  failTimes?: number;
  /** Drop the connection after this fraction (0..1) of the response body was sent. */
  cutAt?: number;
  /** Stop sending (keep the connection open) after this fraction of the body. */
  stallAfter?: number;
  /** How many responses `cutAt`/`stallAfter` apply to; default `Infinity`. */
  times?: number;
  /** Advertise this `Content-Length` instead of the real one (the real bytes are sent). */
  contentLength?: number;
  /** Answer `302 Found` with this `Location` (a full URL). */
  redirectTo?: string;
  /**
   * Range support: `true` (default) advertises `Accept-Ranges: bytes` and answers
   * `Range` with 206; `false` advertises nothing and always sends the whole file;
   * `"ignore"` advertises ranges but still sends the whole file with 200, like a
   * misbehaving proxy.
   */
  ranges?: boolean | "ignore";
}

/** One request the server answered, in arrival order. */
export interface RequestLog {
  /** HTTP method. */
  method: string;
  /** Decoded-as-received URL path, e.g. `/20991231/x.tar.gz`. */
  path: string;
  /** The status the server answered. */
  status: number;
  /** The `Range` request header, if any. */
  range: string | null;
  /** The `If-Range` request header, if any. */
  ifRange: string | null;
}

/** Options of {@link startFaultServer}. */
export interface FaultServerOptions {
  /** Folder served as the mirror: `GET /a/b` reads `<root>/a/b`. */
  root: string;
  /** Fault scripts keyed by URL path (`/a/b`; a missing leading `/` is added). */
  faults?: Record<string, FaultScript>;
}

/** A running {@link startFaultServer}. */
export interface FaultServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The bound port. */
  port: number;
  /** Every answered request, in order; tests may clear it with `length = 0`. */
  requests: RequestLog[];
  /** Replaces (or with `undefined` removes) the script of `path` and resets its counters. */
  setFault(path: string, script: FaultScript | undefined): void;
  /** Releases stalled bodies and stops the server; waits for open connections. */
  close(): Promise<void>;
}

interface PathState {
  script: FaultScript;
  failures: number;
  bodyFaults: number;
}

interface Span {
  start: number;
  end: number;
  size: number;
}

const CHUNK = 64 * 1024;

/**
 * Starts the server on 127.0.0.1, port 0 (a free port).
 *
 * @example
 * ```ts
 * const server = await startFaultServer({ root, faults: { "/x.tar.gz": { status: 404 } } });
 * const response = await fetch(`${server.url}/x.tar.gz`);
 * await response.body?.cancel();
 * await server.close();
 * ```
 */
export function startFaultServer(options: FaultServerOptions): Promise<FaultServer> {
  const states = new Map<string, PathState>();
  const setFault = (path: string, script: FaultScript | undefined) => {
    const key = path.startsWith("/") ? path : `/${path}`;
    if (script === undefined) states.delete(key);
    else states.set(key, { script, failures: 0, bodyFaults: 0 });
  };
  for (const [path, script] of Object.entries(options.faults ?? {})) setFault(path, script);

  const requests: RequestLog[] = [];
  const stalled = new Set<() => void>();
  const answer = (request: Request, path: string, response: Response) => {
    requests.push({
      method: request.method,
      path,
      status: response.status,
      range: request.headers.get("range"),
      ifRange: request.headers.get("if-range"),
    });
    return response;
  };

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    // A cut body is an error on purpose; keep the test output quiet.
    onError: () => new Response("internal error", { status: 500 }),
  }, async (request) => {
    const path = new URL(request.url).pathname;
    const response = await respond(request, path, states.get(path), options.root, stalled);
    return answer(request, path, response);
  });

  const port = server.addr.port;
  return Promise.resolve({
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setFault,
    async close() {
      for (const release of [...stalled]) release();
      await server.shutdown();
    },
  });
}

async function respond(
  request: Request,
  path: string,
  state: PathState | undefined,
  root: string,
  stalled: Set<() => void>,
): Promise<Response> {
  const script = state?.script ?? {};
  if (script.redirectTo !== undefined) {
    return new Response(null, { status: 302, headers: { location: script.redirectTo } });
  }
  if (state && script.status !== undefined && state.failures < (script.failTimes ?? Infinity)) {
    state.failures++;
    return new Response(`fault: ${script.status}\n`, { status: script.status });
  }
  const file = resolveFile(root, path);
  const info = file === undefined ? undefined : await statFile(file);
  if (file === undefined || info === undefined) {
    return new Response("not found\n", { status: 404 });
  }

  const size = info.size;
  const etag = `"${size.toString(16)}-${Math.trunc(info.mtime?.getTime() ?? 0).toString(16)}"`;
  const lastModified = (info.mtime ?? new Date(0)).toUTCString();
  const ranges = script.ranges ?? true;
  const headers = new Headers({ "content-type": "application/octet-stream", etag });
  headers.set("last-modified", lastModified);
  if (ranges !== false) headers.set("accept-ranges", "bytes");

  let span: Span = { start: 0, end: size, size };
  let status = 200;
  const range = request.headers.get("range");
  const ifRange = request.headers.get("if-range");
  const validatorMatches = ifRange === null || ifRange === etag || ifRange === lastModified;
  if (range !== null && ranges === true && validatorMatches) {
    const parsed = parseRange(range, size);
    if (parsed === "unsatisfiable") {
      headers.set("content-range", `bytes */${size}`);
      return new Response("range not satisfiable\n", { status: 416, headers });
    }
    if (parsed !== undefined) {
      span = parsed;
      status = 206;
      headers.set("content-range", `bytes ${span.start}-${span.end - 1}/${size}`);
    }
  }

  const length = span.end - span.start;
  const bodyFault = state !== undefined &&
    (script.cutAt !== undefined || script.stallAfter !== undefined) &&
    state.bodyFaults < (script.times ?? Infinity);
  if (bodyFault) state.bodyFaults++;
  const stop = bodyFault
    ? {
      at: Math.floor(length * (script.cutAt ?? script.stallAfter ?? 1)),
      stall: script.cutAt === undefined,
    }
    : undefined;

  headers.set("content-length", String(script.contentLength ?? length));
  if (request.method === "HEAD") return new Response(null, { status, headers });
  // A stream body, not bytes: Deno.serve then keeps our (possibly wrong) Content-Length.
  return new Response(fileBody(file, span, stop, stalled), { status, headers });
}

function resolveFile(root: string, urlPath: string): string | undefined {
  const segments: string[] = [];
  for (const raw of urlPath.split("/")) {
    if (raw === "") continue;
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (segment === "." || segment === ".." || /[/\\\0]/.test(segment)) return undefined;
    segments.push(segment);
  }
  return segments.length === 0 ? undefined : join(root, ...segments);
}

async function statFile(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n`; other forms are ignored. */
function parseRange(header: string, size: number): Span | "unsatisfiable" | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (match[1] === "") {
    start = Math.max(0, size - Number(match[2]));
    end = size;
  } else {
    start = Number(match[1]);
    end = match[2] === "" ? size : Math.min(size, Number(match[2]) + 1);
  }
  if (start >= size || end <= start) return "unsatisfiable";
  return { start, end, size };
}

/**
 * Streams `span` of the file on demand (pull-based), then either ends, drops the
 * connection after `stop.at` body bytes, or stalls there until the client gives up
 * or the server closes.
 */
function fileBody(
  path: string,
  span: Span,
  stop: { at: number; stall: boolean } | undefined,
  stalled: Set<() => void>,
): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  let sent = 0;
  let release: (() => void) | undefined;
  const limit = Math.min(span.end - span.start, stop?.at ?? Infinity);
  const closeFile = () => {
    file?.close();
    file = undefined;
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      file = await Deno.open(path, { read: true });
      await file.seek(span.start, Deno.SeekMode.Start);
    },
    async pull(controller) {
      if (sent >= limit) {
        closeFile();
        if (stop === undefined) return controller.close();
        if (!stop.stall) return controller.error(new Error("fault: connection cut"));
        return new Promise<void>((resolve) => {
          release = () => {
            stalled.delete(release!);
            try {
              controller.error(new Error("fault server closed"));
            } catch {
              // Already cancelled by the client.
            }
            resolve();
          };
          stalled.add(release);
        });
      }
      const buffer = new Uint8Array(Math.min(CHUNK, limit - sent));
      const n = await file!.read(buffer);
      if (n === null) {
        closeFile();
        return controller.error(new Error(`fault server: ${path} shrank while serving it`));
      }
      sent += n;
      controller.enqueue(buffer.subarray(0, n));
    },
    cancel() {
      closeFile();
      release?.();
    },
  });
}
