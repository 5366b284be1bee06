import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { throws } from "node:assert/strict";
import { join } from "node:path";
import { parseFeed } from "../../src/resolve/feed.ts";
import { debianFixtures } from "../support/fixtures.ts";
import { runCli } from "../support/cli.ts";

const SHA = "a".repeat(64);
const NAME = "cpython-3.14.10%2B20261120-x86_64-unknown-linux-gnu-install_only.tar.gz";

function release(url: string, sha256 = SHA, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: "3.14.10+20261120",
    date: "2026-11-20T00:00:00Z",
    artifacts: [{
      platform: "x86_64-unknown-linux-gnu",
      variant: "install_only",
      url,
      archive_format: "tar.gz",
      sha256,
      ...extra,
    }],
  });
}

Deno.test("parseFeed reads a release and refuses malformed, truncated and hostile lines", () => {
  const good = `https://example.org/20261120/${NAME}`;
  const [d] = parseFeed(release(good) + "\n");
  assertEquals([d.key, d.build, d.sha256], ["cpython-3.14.10-linux-x86_64-gnu", "20261120", SHA]);
  for (
    const bad of [
      release(good).slice(0, 40), // truncated
      "[1, 2]",
      JSON.stringify({ version: 3.14, artifacts: [] }),
      JSON.stringify({ version: "3.14.10+20261120", artifacts: "all" }),
      release(`https://example.org/20261120/../../etc/${NAME}`),
      release(`ftp://example.org/20261120/${NAME}`),
      release(`file:///etc/${NAME}`),
      release(good, "0123"),
      release(good, SHA, { archive_format: "zip" }),
    ]
  ) throws(() => parseFeed(bad + "\n"), /^Error: line 1/, bad);
});

Deno.test("install VERSION finds a release newer than the embedded catalog in the feed; TTL and --refresh", async () => {
  const fx = await debianFixtures("3.14");
  const archive = await Deno.readFile(fx.gz);
  let feed = "";
  let feedRequests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/feed.ndjson") {
      feedRequests++;
      return new Response(feed);
    }
    if (path === `/20261120/${NAME}`) return new Response(archive);
    return new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const home = await Deno.makeTempDir({ prefix: "pyprime-feed-" });
  const env = {
    HOME: home,
    XDG_CACHE_HOME: join(home, "cache"),
    PYPRIME_VERSIONS_URL: `${base}/feed.ndjson`,
  };
  try {
    feed = release(`${base}/20261120/${NAME}`, fx.sha256[fx.gz]) + "\n";
    const dir = join(home, "pythons");
    const r = await runCli(["install", "3.14.10", "--install-dir", dir, "--no-bin", "--json"], {
      env,
    });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout)[0].key, "cpython-3.14.10-linux-x86_64-gnu");
    assertEquals(feedRequests, 1);
    assert(await Deno.stat(join(home, "cache", "pyprime", "versions.ndjson")));
    // Within the TTL the cached feed is used; --refresh asks again.
    const list = await runCli(["list", "--only-available", "3.14.10"], { env });
    assertMatch(list.stdout, /cpython-3\.14\.10-linux-x86_64-gnu/);
    assertEquals(feedRequests, 1);
    const self = await runCli(["self-check", "--refresh"], { env });
    assertEquals(feedRequests, 2);
    assertMatch(
      self.stdout,
      /catalog: embedded \+ feed http:\/\/127\.0\.0\.1:\d+\/feed\.ndjson \(just fetched\).*newest build 20261120/,
    );
    // A hostile feed is refused with one note; the cached good one is kept and used.
    feed = release(`${base}/20261120/../${NAME}`) + "\n";
    const hostile = await runCli(["list", "--only-available", "--refresh", "3.14.10"], { env });
    assertEquals(hostile.code, 0, hostile.stderr);
    assertEquals(hostile.stderr.match(/versions feed/g)?.length, 1, hostile.stderr);
    assertMatch(hostile.stdout, /cpython-3\.14\.10-linux-x86_64-gnu/);
    // Past the TTL the feed is asked for again, unless it failed less than an hour ago.
    const cached = join(home, "cache", "pyprime", "versions.ndjson");
    const old = new Date(Date.now() - 48 * 3600e3);
    await Deno.utime(cached, old, old);
    let n = feedRequests;
    const backedOff = await runCli(["list", "--only-available", "3.14.10"], { env });
    assertEquals(feedRequests, n);
    assertMatch(backedOff.stderr, /failed less than 1 h ago; using the feed cached/);
    await Deno.remove(`${cached}.failed`);
    feed = release(`${base}/20261120/${NAME}`, fx.sha256[fx.gz]) + "\n";
    n = feedRequests;
    const expired = await runCli(["list", "--only-available", "3.14.10"], { env });
    assertEquals(feedRequests, n + 1, expired.stderr);
    assertEquals(expired.stderr, "");
    // A huge feed is cut off at the cap; offline never asks.
    feed = " ".repeat(65 * 1024 * 1024);
    const huge = await runCli(["list", "--only-available", "--refresh", "3.14.10"], { env });
    assertMatch(huge.stderr, /larger than/);
    const before = feedRequests;
    const offline = await runCli(["list", "--only-available", "--offline", "3.14.10"], { env });
    assertEquals(feedRequests, before);
    assertMatch(offline.stderr, /offline: not refreshing the versions feed/);
    assertMatch(offline.stdout, /cpython-3\.14\.10-linux-x86_64-gnu/);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});
