/**
 * Catalog downloads try their URLs in order (Astral's mirror, then GitHub, or each
 * `--mirror` given): a connection failure, 404 or 5xx moves on, a checksum mismatch
 * never does. Two loopback servers stand for the two hosts.
 */
import { basename, join } from "node:path";
import { PBS_PREFIX } from "../../src/resolve/catalog.ts";
import { ASTRAL_PREFIX, downloadUrls } from "../../src/resolve/match.ts";
import { assertEquals, assertMatch } from "../support/assert.ts";
import { uvEntry } from "../support/catalog.ts";
import { runCli } from "../support/cli.ts";
import { type FaultScript, type FaultServer, startFaultServer } from "../support/fault_server.ts";
import { fixtures } from "../support/fixtures.ts";

const fx = await fixtures();
const BUILD = "20240107";
const ARCHIVE = basename(fx.zst);
const PATH = `/${BUILD}/${encodeURIComponent(ARCHIVE)}`;
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
const FAST = { PYPRIME_RETRY_BACKOFF_MS: "10", PYPRIME_HTTP_RETRIES: "1" };

Deno.test("downloadUrls tries Astral's mirror then GitHub without --mirror, each mirror in order with", () => {
  const url = `${PBS_PREFIX}${BUILD}/cpython-3.14.10%2B${BUILD}-x.tar.gz`;
  const rest = url.slice(PBS_PREFIX.length);
  assertEquals(downloadUrls({ url }), [ASTRAL_PREFIX + rest, url]);
  assertEquals(downloadUrls({ url }, ["http://a/", "http://b"]), [
    `http://a/${rest}`,
    `http://b/${rest}`,
  ]);
  assertEquals(downloadUrls({ url: "https://elsewhere.example/x.tar.gz" }), [
    "https://elsewhere.example/x.tar.gz",
  ]);
});

async function setup(sha256 = fx.sha256[fx.zst]) {
  const home = await Deno.makeTempDir({ prefix: "pyprime-fallback-" });
  const mirror = join(home, "mirror");
  await Deno.mkdir(join(mirror, BUILD), { recursive: true });
  await Deno.copyFile(fx.zst, join(mirror, BUILD, ARCHIVE));
  const catalog = join(home, "catalog.json");
  await Deno.writeTextFile(
    catalog,
    JSON.stringify({
      [KEY]: uvEntry({ version: fx.version, build: BUILD, file: ARCHIVE, sha256 }),
    }),
  );
  const install = (mirrors: string[]) =>
    runCli([
      "install",
      fx.version,
      ...["--catalog", catalog, "--install-dir", join(home, "pythons"), "--no-bin"],
      ...["--no-compile-bytecode", "--platform", "linux-x86_64-gnu"],
      ...mirrors.flatMap((m) => ["--mirror", m]),
    ], { env: { HOME: home, ...FAST } });
  return { home, mirror, install };
}

async function withServers(
  mirror: string,
  first: FaultScript | "closed",
  fn: (a: string, aServer: FaultServer | undefined, b: FaultServer) => Promise<void>,
) {
  const b = await startFaultServer({ root: mirror });
  const a = first === "closed" ? undefined : await startFaultServer({
    root: mirror,
    faults: { [PATH]: first },
  });
  // A port nothing listens on: bind one, then close it.
  const closed = first === "closed"
    ? (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      return `http://127.0.0.1:${port}`;
    })()
    : a!.url;
  try {
    await fn(closed, a, b);
  } finally {
    await a?.close();
    await b.close();
  }
}

for (
  const [what, first] of [["a 404", { status: 404 }], ["a 503", { status: 503 }], [
    "no server",
    "closed",
  ]] as const
) {
  Deno.test(`install falls back to the second URL after ${what} from the first`, async () => {
    const { home, mirror, install } = await setup();
    try {
      await withServers(mirror, first, async (a, aServer, b) => {
        const r = await install([a, b.url]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(b.requests.filter((q) => q.path === PATH).map((q) => q.status), [200]);
        if (aServer && first !== "closed" && first.status === 503) {
          assertEquals(aServer.requests.length, 2, "the first URL is retried before falling back");
        }
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
}

Deno.test("install never falls back on a checksum mismatch; after two failures the error names both URLs", async () => {
  const wrong = "e".repeat(64);
  const { home, mirror, install } = await setup(wrong);
  try {
    await withServers(mirror, {}, async (a, _aServer, b) => {
      const r = await install([a, b.url]);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, new RegExp(`expected sha256 ${wrong}`));
      assertEquals(b.requests.length, 0, "a checksum mismatch tried the second URL");
    });
    await withServers(mirror, { status: 404 }, async (a, _aServer, b) => {
      b.setFault(PATH, { status: 502 });
      const r = await install([a, b.url]);
      assertEquals(r.code, 1);
      const error = r.stderr.split("\n").find((l) => l.startsWith("error:"))!;
      assertMatch(
        error,
        new RegExp(`${a}${PATH}.*404.*${b.url}${PATH}.*502`.replaceAll("+", "\\+")),
      );
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
