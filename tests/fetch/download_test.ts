import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type DownloadOptions, openUrl } from "../../src/fetch/download.ts";
import { NetworkError } from "../../src/fetch/network_error.ts";
import { ChecksumMismatchError, PyprimeError } from "../../src/errors.ts";
import { type FaultScript, type FaultServer, startFaultServer } from "../support/fault_server.ts";

const NAME = "cpython-3.12.1+20991231-x86_64-unknown-linux-gnu-install_only.tar.gz";
const PATH = `/20991231/${encodeURIComponent(NAME)}`;
/** Big enough for several chunks per response, small enough to stay fast. */
const SIZE = 300_000;
const FAST: DownloadOptions = { retries: 3, backoffMs: 5, idleTimeoutMs: 2_000 };

function bytesOf(size: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads the whole stream; a failure is returned with the bytes delivered before it. */
async function drain(
  stream: ReadableStream<Uint8Array>,
): Promise<{ bytes: Uint8Array; error?: unknown }> {
  const chunks: Uint8Array[] = [];
  let error: unknown;
  try {
    for await (const chunk of stream) chunks.push(chunk.slice());
  } catch (caught) {
    error = caught;
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes, error };
}

interface Mirror {
  server: FaultServer;
  root: string;
  url: string;
  data: Uint8Array;
}

/** Runs `fn` against a fault server that serves one archive at {@link PATH}. */
async function withMirror(
  fault: FaultScript | undefined,
  fn: (mirror: Mirror) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "pyprime_download_test_" });
  const data = bytesOf(SIZE);
  await Deno.mkdir(join(root, "20991231"));
  await Deno.writeFile(join(root, "20991231", NAME), data);
  const server = await startFaultServer({ root, faults: fault ? { [PATH]: fault } : {} });
  try {
    await fn({ server, root, url: `${server.url}${PATH}`, data });
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

Deno.test("openUrl streams a whole http file with its size, progress and final url", async () => {
  await withMirror(undefined, async ({ url, data, server }) => {
    const progress: number[] = [];
    const download = await openUrl(url, { ...FAST, onProgress: (n) => progress.push(n) });
    assert.equal(download.size, SIZE);
    assert.equal(download.fromCache, false);
    assert.equal(download.url, url);
    const { bytes, error } = await drain(download.stream);
    assert.equal(error, undefined);
    assert.equal(sha256(bytes), sha256(data));
    assert.equal(progress.at(-1), SIZE);
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0].range, null);
  });
});

Deno.test("openUrl resumes with Range and If-Range when the body is cut once", async () => {
  await withMirror({ cutAt: 0.5, times: 1 }, async ({ url, data, server }) => {
    const retries: string[] = [];
    const download = await openUrl(url, { ...FAST, onRetry: (_, reason) => retries.push(reason) });
    const { bytes, error } = await drain(download.stream);
    assert.equal(error, undefined);
    assert.equal(bytes.byteLength, SIZE);
    assert.equal(sha256(bytes), sha256(data));
    assert.equal(retries.length, 1);
    assert.match(retries[0], /connection lost after 150000 of 300000 bytes/);
    assert.deepEqual(server.requests.map((r) => [r.status, r.range]), [
      [200, null],
      [206, "bytes=150000-"],
    ]);
    assert.match(server.requests[1].ifRange ?? "", /^"/, "the ETag is sent as If-Range");
  });
});

Deno.test("openUrl fails restartable without range support; a fresh start gets the whole file", async () => {
  await withMirror({ cutAt: 0.5, times: 1, ranges: false }, async ({ url, data, server }) => {
    const first = await drain((await openUrl(url, FAST)).stream);
    assert.ok(first.error instanceof NetworkError);
    assert.equal(first.error.restartable, true);
    assert.match(first.error.message, /^Cannot download http:\/\/127\.0\.0\.1:\d+\/20991231\//);
    assert.match(first.error.message, /the server cannot resume/);
    assert.deepEqual(first.bytes, data.subarray(0, first.bytes.byteLength), "a clean prefix");
    assert.equal(server.requests.length, 1, "no Range request to a server without ranges");

    const second = await drain((await openUrl(url, FAST)).stream);
    assert.equal(second.error, undefined);
    assert.equal(sha256(second.bytes), sha256(data));
  });
});

Deno.test("openUrl fails restartable when a resumed request gets 200 instead of 206", async () => {
  await withMirror({ cutAt: 0.5, times: 1, ranges: "ignore" }, async ({ url, data, server }) => {
    const { bytes, error } = await drain((await openUrl(url, FAST)).stream);
    assert.ok(error instanceof NetworkError);
    assert.equal(error.restartable, true);
    assert.match(error.message, /resuming got 200 OK instead of 206/);
    assert.deepEqual(bytes, data.subarray(0, SIZE / 2), "nothing of the 200 body was spliced in");
    assert.equal(server.requests[1].range, "bytes=150000-");
  });
});

Deno.test("openUrl fails restartable when the file changed between attempts (If-Range)", async () => {
  await withMirror({ cutAt: 0.5, times: 1 }, async ({ url, root, data }) => {
    const replace = () => Deno.writeFileSync(join(root, "20991231", NAME), bytesOf(SIZE + 1, 99));
    const { bytes, error } = await drain(
      (await openUrl(url, { ...FAST, onRetry: replace })).stream,
    );
    assert.ok(error instanceof NetworkError);
    assert.equal(error.restartable, true);
    assert.match(error.message, /instead of 206/);
    assert.deepEqual(bytes, data.subarray(0, SIZE / 2));
  });
});

Deno.test("openUrl gives up with a NetworkError when every response is cut", async () => {
  await withMirror({ cutAt: 0.5, times: Infinity }, async ({ url, data, server }) => {
    const retries: number[] = [];
    const download = await openUrl(url, { ...FAST, onRetry: (attempt) => retries.push(attempt) });
    const { bytes, error } = await drain(download.stream);
    assert.ok(error instanceof NetworkError);
    assert.equal(error.restartable, false);
    assert.match(error.message, /gave up after 4 attempts/);
    assert.ok(error.message.includes(url));
    assert.ok(error.cause instanceof Error, "the last low-level error is chained");
    assert.deepEqual(retries, [1, 2, 3]);
    assert.equal(server.requests.length, 4);
    // Each response sends half of what it was asked for: 1/2 + 1/4 + 1/8 + 1/16.
    assert.equal(bytes.byteLength, 281_250);
    assert.deepEqual(bytes, data.subarray(0, bytes.byteLength), "no byte duplicated or skipped");
  });
});

Deno.test("openUrl resumes a body that stalls once (idle timeout)", async () => {
  await withMirror({ stallAfter: 0.5, times: 1 }, async ({ url, data, server }) => {
    const reasons: string[] = [];
    const options = {
      ...FAST,
      idleTimeoutMs: 250,
      onRetry: (_: number, r: string) => reasons.push(r),
    };
    const { bytes, error } = await drain((await openUrl(url, options)).stream);
    assert.equal(error, undefined);
    assert.equal(sha256(bytes), sha256(data));
    assert.match(reasons[0], /no data for 250 ms/);
    assert.equal(server.requests[1].range, "bytes=150000-");
  });
});

Deno.test("openUrl fails after retries when the body always stalls", async () => {
  await withMirror({ stallAfter: 0, ranges: false }, async ({ url }) => {
    const options = { ...FAST, retries: 1, idleTimeoutMs: 100 };
    const { bytes, error } = await drain((await openUrl(url, options)).stream);
    assert.equal(bytes.byteLength, 0);
    assert.ok(error instanceof NetworkError);
    // Nothing went downstream, so even without ranges it retried from scratch.
    assert.match(error.message, /no data for 100 ms.*gave up after 2 attempts/);
  });
});

Deno.test("openUrl retries a 500 and then succeeds", async () => {
  await withMirror({ status: 500, failTimes: 1 }, async ({ url, data, server }) => {
    const reasons: string[] = [];
    const options = { ...FAST, onRetry: (_: number, reason: string) => reasons.push(reason) };
    const { bytes, error } = await drain((await openUrl(url, options)).stream);
    assert.equal(error, undefined);
    assert.equal(sha256(bytes), sha256(data));
    assert.deepEqual(reasons, ["500 Internal Server Error"]);
    assert.deepEqual(server.requests.map((r) => r.status), [500, 200]);
  });
});

Deno.test("openUrl gives up on a persistent 503 with the status in the message", async () => {
  await withMirror({ status: 503 }, async ({ url, server }) => {
    const error = await rejection(openUrl(url, { ...FAST, retries: 2 }));
    assert.ok(error instanceof NetworkError);
    assert.equal(
      error.message,
      `Cannot download ${url}: 503 Service Unavailable (gave up after 3 attempts)`,
    );
    assert.equal(server.requests.length, 3);
  });
});

Deno.test("openUrl fails at once on a 404 with the URL and status", async () => {
  await withMirror({ status: 404 }, async ({ url, server }) => {
    const retries: number[] = [];
    const error = await rejection(openUrl(url, { ...FAST, onRetry: (a) => retries.push(a) }));
    assert.ok(error instanceof NetworkError);
    assert.equal(error.message, `Cannot download ${url}: 404 Not Found`);
    assert.equal(error.status, 404);
    assert.equal(error.restartable, false);
    assert.ok(error.hint);
    assert.deepEqual(retries, []);
    assert.equal(server.requests.length, 1);
  });
});

Deno.test("openUrl detects a Content-Length larger than the body as truncation", async () => {
  await withMirror({ contentLength: SIZE + 100, ranges: false }, async ({ url }) => {
    const download = await openUrl(url, FAST);
    assert.equal(download.size, SIZE + 100);
    const { bytes, error } = await drain(download.stream);
    assert.ok(error instanceof NetworkError);
    assert.match(error.message, new RegExp(`after ${SIZE} of ${SIZE + 100} bytes`));
    assert.equal(bytes.byteLength, SIZE);
  });
});

Deno.test("openUrl ends cleanly on a too small Content-Length: only the checksum can tell", async () => {
  await withMirror({ contentLength: SIZE - 100 }, async ({ url, data }) => {
    const { bytes, error } = await drain((await openUrl(url, FAST)).stream);
    assert.equal(error, undefined);
    assert.equal(bytes.byteLength, SIZE - 100);
    assert.notEqual(sha256(bytes), sha256(data));
  });
});

Deno.test("openUrl follows a redirect to another port and reports the final URL", async () => {
  await withMirror(undefined, async ({ url, data, root }) => {
    const front = await startFaultServer({
      root,
      faults: { "/latest.tar.gz": { redirectTo: url } },
    });
    try {
      const download = await openUrl(`${front.url}/latest.tar.gz`, FAST);
      assert.equal(download.url, url);
      const { bytes, error } = await drain(download.stream);
      assert.equal(error, undefined);
      assert.equal(sha256(bytes), sha256(data));
      assert.deepEqual(front.requests.map((r) => r.status), [302]);
    } finally {
      await front.close();
    }
  });
});

Deno.test("openUrl retries a refused connection and chains the cause", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const url = `http://127.0.0.1:${port}/x.tar.gz`;
  let retries = 0;
  const error = await rejection(openUrl(url, { ...FAST, retries: 2, onRetry: () => retries++ }));
  assert.ok(error instanceof NetworkError);
  assert.ok(error.message.startsWith(`Cannot download ${url}: `));
  assert.match(error.message, /gave up after 3 attempts/);
  assert.ok(error.cause instanceof Error);
  assert.equal(retries, 2);
});

Deno.test("openUrl hides URL credentials in messages", async () => {
  await withMirror({ status: 404 }, async ({ server }) => {
    const url = `http://user:secret@127.0.0.1:${server.port}${PATH}`;
    const error = await rejection(openUrl(url, FAST));
    assert.ok(error instanceof NetworkError);
    assert.ok(!error.message.includes("secret"), error.message);
    assert.ok(!error.url.includes("secret"));
  });
});

Deno.test("openUrl uses an injected fetch and honours Retry-After", async () => {
  const calls: string[] = [];
  const fakeFetch: typeof fetch = (input) => {
    calls.push(String(input));
    const response = calls.length === 1
      ? new Response("slow down", { status: 429, headers: { "retry-after": "0.05" } })
      : new Response(new Uint8Array([1, 2, 3]), { headers: { "content-length": "3" } });
    return Promise.resolve(response);
  };
  const delays: number[] = [];
  const download = await openUrl("https://example.invalid/a.tar.gz", {
    ...FAST,
    backoffMs: 1,
    fetch: fakeFetch,
    onRetry: (_, __, delay) => delays.push(delay),
  });
  const { bytes } = await drain(download.stream);
  assert.deepEqual([...bytes], [1, 2, 3]);
  assert.equal(calls.length, 2);
  assert.deepEqual(delays, [50]);
});

Deno.test("openUrl in offline mode refuses http but reads file:// URLs", async () => {
  const error = await rejection(openUrl("https://example.invalid/a.tar.gz", { offline: true }));
  assert.ok(error instanceof PyprimeError);
  assert.match(error.message, /offline/);
  assert.match(error.hint ?? "", /file:\/\/ mirror/);

  const dir = await Deno.makeTempDir({ prefix: "pyprime_download_test_" });
  try {
    const data = bytesOf(1_000_000);
    const path = join(dir, "a b.tar.gz");
    await Deno.writeFile(path, data);
    const progress: number[] = [];
    const download = await openUrl(pathToFileURL(path).href, {
      offline: true,
      onProgress: (n) => progress.push(n),
    });
    assert.equal(download.size, data.byteLength);
    assert.equal(download.fromCache, false);
    const { bytes, error } = await drain(download.stream);
    assert.equal(error, undefined);
    assert.equal(sha256(bytes), sha256(data));
    assert.equal(progress.at(-1), data.byteLength);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openUrl names the path of a missing file:// archive", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pyprime_download_test_" });
  try {
    const path = join(dir, "missing.tar.gz");
    const error = await rejection(openUrl(pathToFileURL(path).href));
    assert.ok(error instanceof PyprimeError);
    assert.equal(error.message, `Cannot read ${path}: not found`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openUrl rejects unsupported schemes", async () => {
  const error = await rejection(openUrl("ftp://example.invalid/a.tar.gz"));
  assert.ok(error instanceof PyprimeError);
  assert.match(error.message, /unsupported URL scheme/);
});

Deno.test("openUrl tees into the cache, commit moves it in place, then it is served from disk", async () => {
  await withMirror({ cutAt: 0.5, times: 1 }, async ({ url, data, root, server }) => {
    const cacheDir = join(root, "cache");
    const options = { ...FAST, cacheDir, expectedSha256: sha256(data) };
    const first = await openUrl(url, options);
    assert.equal(first.fromCache, false);
    const read = await drain(first.stream);
    assert.equal(sha256(read.bytes), sha256(data));
    const parts = [...Deno.readDirSync(cacheDir)].map((e) => e.name);
    assert.equal(parts.length, 1);
    assert.match(parts[0], /^\.cpython-3\.12\.1\+20991231-.*\.tar\.gz\.[0-9a-f]+\.part$/);
    await first.commit();
    assert.deepEqual([...Deno.readDirSync(cacheDir)].map((e) => e.name), [NAME]);
    assert.deepEqual(await Deno.readFile(join(cacheDir, NAME)), data);

    const requestsBefore = server.requests.length;
    const second = await openUrl(url, { ...options, offline: true });
    assert.equal(second.fromCache, true);
    assert.equal(second.url, pathToFileURL(join(cacheDir, NAME)).href);
    assert.equal(sha256((await drain(second.stream)).bytes), sha256(data));
    assert.equal(server.requests.length, requestsBefore, "no request for a cache hit");

    await second.discard();
    assert.deepEqual([...Deno.readDirSync(cacheDir)], [], "discard evicts a bad cache hit");
  });
});

Deno.test("openUrl cache: discard removes the part file and nothing is cached", async () => {
  await withMirror(undefined, async ({ url, root }) => {
    const cacheDir = join(root, "cache");
    const download = await openUrl(url, { ...FAST, cacheDir });
    await drain(download.stream);
    await download.discard();
    await download.commit().then(
      () => assert.fail("commit after discard must fail"),
      (error) => assert.ok(error instanceof PyprimeError),
    );
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
  });
});

Deno.test("openUrl cache: commit refuses bytes that differ from expectedSha256", async () => {
  await withMirror(undefined, async ({ url, root }) => {
    const cacheDir = join(root, "cache");
    const download = await openUrl(url, { ...FAST, cacheDir, expectedSha256: "0".repeat(64) });
    await drain(download.stream);
    const error = await rejection(download.commit());
    assert.ok(error instanceof ChecksumMismatchError);
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
  });
});

Deno.test("openUrl cache: a failed or cancelled download leaves no part file", async () => {
  await withMirror({ cutAt: 0.5, times: Infinity, ranges: false }, async ({ url, root }) => {
    const cacheDir = join(root, "cache");
    const failed = await openUrl(url, { ...FAST, cacheDir });
    assert.ok((await drain(failed.stream)).error instanceof NetworkError);
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
    const error = await rejection(failed.commit());
    assert.match(String(error), /not read to the end/);

    const cancelled = await openUrl(url, { ...FAST, cacheDir });
    const reader = cancelled.stream.getReader();
    await reader.read();
    await reader.cancel();
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
  });
});

Deno.test("openUrl stream is pull-based: nothing is read far ahead of the consumer", async () => {
  await withMirror(undefined, async ({ root, server }) => {
    const big = 8 * 1024 * 1024;
    await Deno.writeFile(join(root, "big.bin"), bytesOf(big, 3));
    let received = 0;
    const download = await openUrl(`${server.url}/big.bin`, {
      ...FAST,
      onProgress: (n) => (received = n),
    });
    const reader = download.stream.getReader();
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(received < 1024 * 1024, `read ahead ${received} bytes while the consumer waited`);
    await reader.cancel();
  });
});

Deno.test("openUrl stops on abort with the signal's reason and makes no more requests", async () => {
  await withMirror({ stallAfter: 0.5, ranges: false }, async ({ url, server }) => {
    const controller = new AbortController();
    const download = await openUrl(url, {
      ...FAST,
      idleTimeoutMs: 10_000,
      signal: controller.signal,
    });
    const reader = download.stream.getReader();
    await reader.read();
    const reason = new Error("stop");
    setTimeout(() => controller.abort(reason), 20);
    const error = await rejection((async () => {
      for (;;) if ((await reader.read()).done) return;
    })());
    assert.equal(error, reason);
    assert.equal(server.requests.length, 1);
  });
});

Deno.test("openUrl resumes a body that ends cleanly before its Content-Length", async () => {
  const data = bytesOf(1000);
  const ranges: (string | null)[] = [];
  const fakeFetch: typeof fetch = (_input, init) => {
    const range = new Headers(init?.headers).get("range");
    ranges.push(range);
    const headers = { "accept-ranges": "bytes", etag: '"v1"', "content-length": "1000" };
    if (range === null) return Promise.resolve(new Response(data.slice(0, 400), { headers }));
    return Promise.resolve(
      new Response(data.slice(400), {
        status: 206,
        headers: { ...headers, "content-length": "600", "content-range": "bytes 400-999/1000" },
      }),
    );
  };
  const reasons: string[] = [];
  const download = await openUrl("https://example.invalid/a.tar.gz", {
    ...FAST,
    fetch: fakeFetch,
    onRetry: (_, reason) => reasons.push(reason),
  });
  const { bytes, error } = await drain(download.stream);
  assert.equal(error, undefined);
  assert.equal(sha256(bytes), sha256(data));
  assert.deepEqual(ranges, [null, "bytes=400-"]);
  assert.deepEqual(reasons, ["connection closed after 400 of 1000 bytes"]);
});

Deno.test("fault server answers ranges, 416, HEAD and refuses paths outside its root", async () => {
  await withMirror(undefined, async ({ url, data, server }) => {
    const get = async (path: string, headers: Record<string, string> = {}, method = "GET") => {
      const response = await fetch(path, { headers, method });
      return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
    };
    const middle = await get(url, { range: "bytes=10-19" });
    assert.equal(middle.response.status, 206);
    assert.equal(middle.response.headers.get("content-range"), `bytes 10-19/${SIZE}`);
    assert.deepEqual(middle.bytes, data.subarray(10, 20));

    const suffix = await get(url, { range: "bytes=-5" });
    assert.deepEqual(suffix.bytes, data.subarray(SIZE - 5));

    const beyond = await get(url, { range: `bytes=${SIZE}-` });
    assert.equal(beyond.response.status, 416);
    assert.equal(beyond.response.headers.get("content-range"), `bytes */${SIZE}`);

    const head = await get(url, {}, "HEAD");
    assert.equal(head.response.headers.get("content-length"), String(SIZE));
    assert.equal(head.bytes.byteLength, 0);

    server.setFault(PATH, { ranges: false });
    const whole = await get(url, { range: "bytes=10-19" });
    assert.equal(whole.response.status, 200);
    assert.equal(whole.response.headers.get("accept-ranges"), null);
    assert.equal(whole.bytes.byteLength, SIZE);

    for (const path of ["/%2e%2e/etc/passwd", "/20991231/..%2f..%2fx", "/", "/20991231"]) {
      const outside = await get(`${server.url}${path}`);
      assert.equal(outside.response.status, 404, path);
    }
    assert.equal(server.requests.at(-1)?.status, 404);
  });
});
