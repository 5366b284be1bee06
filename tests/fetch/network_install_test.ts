/**
 * End-to-end tests of `pyprime install REQUEST` through a catalog in uv's format,
 * mirrors (Debian's nginx on loopback; the Deno fault server for cuts, stalls, 5xx and
 * lying lengths; `file://`; a plain folder), the
 * download cache, `--offline`, a network namespace with no network, and the
 * everyday commands (`list`, `find`, `uninstall`) over what was installed.
 *
 * Every CLI run is a subprocess with the production permission set and HOME in a
 * temp dir; "nothing left behind" means the install dir holds only `.lock` and an
 * empty `.staging`, and the cache holds no `.part` file.
 *
 * @module
 */
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { permissionFlags } from "../../scripts/permissions.ts";
import { PBS_PREFIX } from "../../src/resolve/catalog.ts";
import { DOWNLOAD_ENV } from "../../src/fetch/tuning.ts";
import { minorDirName } from "../../src/install/minor_links.ts";
import { assert, assertEquals, assertMatch, assertNotMatch } from "../support/assert.ts";
import { cliEnv, type CliResult, decodeOutput, ROOT } from "../support/cli.ts";
import {
  type FaultScript,
  type FaultServer,
  type RequestLog,
  startFaultServer,
} from "../support/fault_server.ts";
import { debianFixtures, fixtures } from "../support/fixtures.ts";
import { listTree, names } from "../support/helpers.ts";
import { startNginx } from "../support/nginx.ts";
import { uvEntry } from "../support/catalog.ts";
import { assertOneError, type World, worldOf } from "../support/mirror_world.ts";

const fx = await fixtures();
const BUILD = "20991231";
const PLATFORM = "linux-x86_64-gnu";
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
const ARCHIVE = basename(fx.zst);
/** The archive's URL path as the catalog names it and the server receives it. */
const ARCHIVE_PATH = `/${BUILD}/${encodeURIComponent(ARCHIVE)}`;
const [MAJOR, MINOR] = fx.version.split(".").map(Number);
/** A newer stable version the catalog lists but no mirror has. */
const NEWER = `${MAJOR}.${MINOR + 1}.5`;
/** A pre-release, newer still: never picked unless asked for. */
const PRE = `${MAJOR}.${MINOR + 2}.0rc2`;
/** An older version, so "nearest" has something on both sides. */
const OLDER = `${MAJOR}.${MINOR - 1}.7`;
const MAIN = join(ROOT, "main.ts");

// ---------------------------------------------------------------------------------
// Helpers.

/** Escapes `text` for a RegExp. */
function re(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

function archiveName(version: string): string {
  return `cpython-${version}+${BUILD}-x86_64-unknown-linux-gnu-install_only.tar.gz`;
}

/** One entry of uv's download-metadata.json for `file` of the test release. */
function entry(version: string, file: string, sha256: string, arch?: string, archVariant?: string) {
  return uvEntry({ version, build: BUILD, file, sha256, arch, archVariant });
}

/** The test catalog: the fixture, plus versions whose archives no mirror has. */
function catalogJson(sha256: string, extra: Record<string, unknown> = {}): string {
  const entries: Record<string, unknown> = {
    ...extra,
    [KEY]: entry(fx.version, ARCHIVE, sha256),
    [`cpython-${NEWER}-linux-x86_64-gnu`]: entry(NEWER, archiveName(NEWER), "a".repeat(64)),
    [`cpython-${PRE}-linux-x86_64-gnu`]: entry(PRE, archiveName(PRE), "b".repeat(64)),
    [`cpython-${OLDER}-linux-x86_64-gnu`]: entry(OLDER, archiveName(OLDER), "c".repeat(64)),
    [`cpython-${fx.version}-linux-aarch64-gnu`]: entry(
      fx.version,
      archiveName(fx.version).replace("x86_64", "aarch64"),
      "d".repeat(64),
      "aarch64",
    ),
  };
  return JSON.stringify(entries, null, 2);
}

async function world(
  options: { sha256?: string; extra?: Record<string, unknown> } = {},
): Promise<World> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-net-" });
  const mirror = join(home, "mirror");
  await Deno.mkdir(join(mirror, BUILD), { recursive: true });
  const copy = join(mirror, BUILD, ARCHIVE);
  await Deno.link(fx.zst, copy).catch(() => Deno.copyFile(fx.zst, copy));
  // In the mirror, so the server can serve it as a catalog URL too.
  const catalog = join(mirror, "download-metadata.json");
  await Deno.writeTextFile(
    catalog,
    catalogJson(options.sha256 ?? fx.sha256[fx.zst], options.extra),
  );
  return worldOf(home, mirror, catalog);
}

/** Fast retries for every run: a fault test must not wait for production backoff. */
const FAST_ENV = {
  [DOWNLOAD_ENV.backoff]: "20",
  [DOWNLOAD_ENV.timeout]: "10",
};

/** The `deno run … main.ts ARGS` argv, with the environment of {@link cliEnv}. */
async function argv(args: string[]): Promise<string[]> {
  return [Deno.execPath(), "run", ...(await permissionFlags()), MAIN, ...args];
}

/** Starts `install TAG` from `mirror` into the world's dirs and cache, to be signalled. */
async function spawnInstall(
  w: World,
  mirror: string,
  extra: string[],
  env: Record<string, string> = {},
): Promise<Deno.ChildProcess> {
  const [cmd, ...args] = await argv([
    "install",
    fx.tag,
    ...["--catalog", w.catalog, "--platform", PLATFORM, "--install-dir", w.dir],
    ...["--mirror", mirror, "--cache-dir", w.cache, "--no-bin", ...extra],
  ]);
  return new Deno.Command(cmd, {
    args,
    clearEnv: true,
    env: cliEnv({ HOME: w.home, ...env }),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `[prefix…] deno run … main.ts ARGS` with HOME and fast download settings. */
async function pyprime(
  w: World,
  args: string[],
  env: Record<string, string> = {},
  prefix: string[] = [],
): Promise<CliResult> {
  const [cmd, ...rest] = [...prefix, ...(await argv(args))];
  const output = await new Deno.Command(cmd, {
    args: rest,
    clearEnv: true,
    env: cliEnv({ HOME: w.home, ...FAST_ENV, ...env }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return decodeOutput(output);
}

/** `install REQUESTS --catalog --platform --install-dir --no-compile-bytecode --no-bin …`. */
function install(
  w: World,
  requests: string[],
  extra: string[] = [],
  env: Record<string, string> = {},
  prefix: string[] = [],
): Promise<CliResult> {
  return pyprime(
    w,
    [
      "install",
      ...requests,
      "--catalog",
      w.catalog,
      "--platform",
      PLATFORM,
      "--install-dir",
      w.dir,
      "--no-compile-bytecode",
      "--no-bin",
      ...extra,
    ],
    env,
    prefix,
  );
}

/** A server and the requests it answered (the fault server's log, or nginx's). */
interface Served {
  url: string;
  requests: RequestLog[];
  close(): Promise<void>;
}

/**
 * Debian's nginx serving `root` (see tests/support/nginx.ts): every test without a
 * fault runs against a web server people actually run. Its access log is shown in the
 * fault server's shape; `clear()` forgets the requests so far.
 */
async function withMirror<T>(
  root: string,
  fn: (server: Served & { clear(): void }) => Promise<T>,
): Promise<T> {
  const nginx = await startNginx({ root });
  let skip = 0;
  let stopped = false;
  const log = () =>
    nginx.requestsSync().map((q): RequestLog => ({
      method: q.method,
      path: q.uri,
      status: q.status,
      range: q.range || null,
      ifRange: q.ifRange || null,
    }));
  const served = {
    url: nginx.url,
    get requests() {
      return log().slice(skip);
    },
    clear: () => skip = log().length,
    close: async () => {
      if (stopped) return;
      stopped = true;
      await nginx.stop();
    },
  };
  try {
    return await fn(served);
  } finally {
    await served.close();
  }
}

/** The Deno fault server, for the faults nginx cannot make (cuts, stalls, lies). */
async function withServer<T>(
  root: string,
  faults: Record<string, FaultScript>,
  fn: (server: FaultServer) => Promise<T>,
): Promise<T> {
  const server = await startFaultServer({ root, faults });
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/**
 * Nothing left behind: no installation, no staging leftovers, no partial cache file.
 * A command that failed before it made the install dir leaves no dir at all.
 */
async function assertNothingLeft(w: World, { made = true } = {}): Promise<void> {
  assertEquals(await listTree(w.dir), made ? [".lock", ".staging"] : []);
  const parts = (await listTree(w.cache)).filter((p) => p.endsWith(".part"));
  assertEquals(parts, []);
}

async function runPython(python: string, code: string): Promise<string> {
  const out = await new Deno.Command(python, {
    args: ["-I", "-c", code],
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assertEquals(out.code, 0, decoder.decode(out.stderr));
  return decoder.decode(out.stdout).trim();
}

/** The installation of KEY works: the interpreter runs and imports the stdlib. */
async function assertInstalled(w: World): Promise<void> {
  // The installation and its minor-version link.
  assertEquals(
    (await names(w.dir)).filter((n) => !n.startsWith(".")),
    [KEY, minorDirName(KEY)!].sort(),
  );
  assertEquals(await names(join(w.dir, ".staging")), []);
  const python = join(w.dir, KEY, "bin", "python3");
  const text = await runPython(
    python,
    "import json, sys; print(json.dumps(list(sys.version_info[:3]), separators=(',', ':')))",
  );
  assertEquals(text, JSON.stringify(fx.version.split(".").map(Number)));
}

function gets(server: Served, path = ARCHIVE_PATH) {
  return server.requests.filter((r) => r.path === path);
}

// ---------------------------------------------------------------------------------
// Catalog, mirror, selection.

Deno.test("install TAG downloads from an http mirror, compiles, runs and --json reports key and sha256", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const r = await pyprime(w, [
      "install",
      fx.tag,
      "--catalog",
      w.catalog,
      "--mirror",
      server.url,
      "--platform",
      PLATFORM,
      "--install-dir",
      w.dir,
      "--no-bin",
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const [outcome] = JSON.parse(r.stdout);
    assertEquals(outcome.key, KEY);
    assertEquals(outcome.status, "installed");
    assertEquals(outcome.sha256, fx.sha256[fx.zst]);
    assertEquals(outcome.source, fx.tag);
    assertEquals(outcome.path, join(await Deno.realPath(w.dir), KEY));
    assert(outcome.bytecode.compiled > 100, JSON.stringify(outcome.bytecode));
    assertEquals(outcome.revoked, ["net"]);
    assertEquals(
      gets(server).map((q) => [q.method, q.status, q.range]),
      [["GET", 200, null]],
    );
    assertEquals(server.requests.length, 1);
    await assertInstalled(w);
    const cached = join(w.dir, KEY, "lib", `python${fx.tag}`, "__pycache__");
    assert((await names(cached)).some((n) => n.startsWith("os.") && n.endsWith(".pyc")));
  });
  await w.remove();
});

Deno.test("install reads the mirror and catalog from PYPRIME_PYTHON_INSTALL_MIRROR and PYPRIME_CATALOG", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const env = { PYPRIME_PYTHON_INSTALL_MIRROR: `${server.url}/`, PYPRIME_CATALOG: w.catalog };
    const base = ["install", "--platform", PLATFORM, "--install-dir", w.dir, "--no-bin"];
    const exact = await pyprime(w, [...base, fx.version, "--no-compile-bytecode"], env);
    assertEquals(exact.code, 0, exact.stderr);
    assertEquals(exact.stdout.trim(), join(await Deno.realPath(w.dir), KEY, "bin", "python3"));
    assertMatch(exact.stderr, re(`Installed ${KEY}`));
    await assertInstalled(w);

    const spec = `>=${MAJOR}.${MINOR},<${MAJOR}.${MINOR + 1}`;
    const ranged = await pyprime(
      w,
      [...base, spec, "--no-compile-bytecode", "--reinstall", "--json"],
      env,
    );
    assertEquals(ranged.code, 0, ranged.stderr);
    assertEquals(JSON.parse(ranged.stdout)[0].status, "reinstalled");
    assertEquals(JSON.parse(ranged.stdout)[0].key, KEY);
    assertEquals(gets(server).length, 2);
    await assertInstalled(w);
  });
  await w.remove();
});

Deno.test("install picks the newest stable version, pre-releases only when asked; 404 names the URL", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const mirror = ["--mirror", server.url];
    // `3` is NEWER, which the mirror lacks: a 404, asked once, naming the URL.
    const newest = await install(w, [String(MAJOR)], mirror);
    const newerUrl = `${server.url}/${BUILD}/${encodeURIComponent(archiveName(NEWER))}`;
    assertOneError(newest, re(newerUrl), /404/);
    assertEquals(server.requests.map((q) => q.status), [404]);
    await assertNothingLeft(w);

    server.clear();
    const pre = await install(w, [String(MAJOR)], [...mirror, "--prerelease"]);
    assertOneError(pre, re(encodeURIComponent(archiveName(PRE))), /404/);

    const asked = await install(w, [`${MAJOR}.${MINOR + 2}`], mirror);
    assertOneError(asked, re(`pre-release available: ${PRE}`));
    assertMatch(
      asked.stderr,
      re(`hint: ask for the pre-release explicitly, e.g. pyprime install ${PRE}`),
    );
    assertEquals(server.requests.length, 1, "only the --prerelease run reached the server");
    await assertNothingLeft(w);
  });
  await w.remove();
});

Deno.test("install of a version that matches nothing lists the nearest versions", async () => {
  const w = await world();
  const none = await install(w, [`${MAJOR}.${MINOR - 3}`]);
  const line = assertOneError(none, /nearest available: /, re(`${MAJOR}.${MINOR - 3}`));
  for (const v of [OLDER, fx.version, NEWER]) assertMatch(line, re(v));
  assertNotMatch(line, re(PRE));
  assertEquals(none.stdout, "");

  const patch = await install(w, [`${fx.tag}.99`]);
  assertOneError(patch, re(`nearest available: ${fx.version}`));
  const nothing = await install(w, [">=4"]);
  assertOneError(nothing, /nearest available/);
  // Requests are resolved before the install dir is made.
  await assertNothingLeft(w, { made: false });
  await w.remove();
});

// ---------------------------------------------------------------------------------
// Faults.

Deno.test("install retries a 500 and then succeeds", async () => {
  const w = await world();
  await withServer(w.mirror, { [ARCHIVE_PATH]: { status: 500, failTimes: 1 } }, async (server) => {
    const r = await install(w, [fx.tag], ["--mirror", server.url]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /warning: 500 Internal Server Error; retry 1 in/);
    assertEquals(gets(server).map((q) => q.status), [500, 200]);
    await assertInstalled(w);
  });
  await w.remove();
});

Deno.test("install resumes a body cut at 50% with a Range request", async () => {
  const w = await world();
  const faults = { [ARCHIVE_PATH]: { cutAt: 0.5, times: 1 } };
  await withServer(w.mirror, faults, async (server) => {
    const r = await install(w, [fx.tag], [
      "--mirror",
      server.url,
      "--cache-dir",
      w.cache,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout)[0].sha256, fx.sha256[fx.zst]);
    const [first, second] = gets(server);
    assertEquals([first.status, first.range], [200, null]);
    assertEquals(second.status, 206);
    assertMatch(second.range ?? "", /^bytes=\d+-$/);
    assert(second.ifRange, "a resume carries If-Range");
    assertEquals(gets(server).length, 2);
    await assertInstalled(w);
    // The cache holds the whole file, identical to the original.
    assertEquals(await names(w.cache), [ARCHIVE]);
    assertEquals((await Deno.stat(join(w.cache, ARCHIVE))).size, fx.sizes[fx.zst]);
  });
  await w.remove();
});

Deno.test("install starts over into a fresh staging folder when a cut body cannot resume", async () => {
  const w = await world();
  const faults = { [ARCHIVE_PATH]: { cutAt: 0.5, times: 1, ranges: false } };
  await withServer(w.mirror, faults, async (server) => {
    const r = await install(w, [fx.tag], ["--mirror", server.url]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /the server cannot resume; starting over/);
    assertEquals(gets(server).map((q) => [q.status, q.range]), [[200, null], [200, null]]);
    await assertInstalled(w);
  });
  await w.remove();
});

Deno.test("install gives up on a body cut every time, names the URL and leaves nothing", async () => {
  const w = await world();
  await withServer(w.mirror, { [ARCHIVE_PATH]: { cutAt: 0.5 } }, async (server) => {
    const r = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache], {
      [DOWNLOAD_ENV.retries]: "2",
    });
    assertOneError(r, re(`${server.url}${ARCHIVE_PATH}`), /gave up after 3 attempts/);
    assertEquals(gets(server).length, 3);
    await assertNothingLeft(w);
    assertEquals(await names(w.cache), []);
  });
  await w.remove();
});

Deno.test("install times out a stalled body (PYPRIME_HTTP_TIMEOUT) and leaves nothing", async () => {
  const w = await world();
  await withServer(w.mirror, { [ARCHIVE_PATH]: { stallAfter: 0.5 } }, async (server) => {
    const started = performance.now();
    // `timeout` turns a hang (an idle timeout that never fires) into a failure.
    const r = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache], {
      [DOWNLOAD_ENV.timeout]: "0.5",
      [DOWNLOAD_ENV.retries]: "1",
    }, ["timeout", "20"]);
    assertOneError(r, re(`${server.url}${ARCHIVE_PATH}`), /no data for 500 ms/, /gave up after 2/);
    assert(performance.now() - started < 15_000, "the idle timeout was not applied");
    assertEquals(gets(server).length, 2);
    await assertNothingLeft(w);
  });
  await w.remove();
});

Deno.test("install stopped by SIGTERM mid-download exits 143 and leaves nothing", async () => {
  const w = await world();
  await withServer(w.mirror, { [ARCHIVE_PATH]: { stallAfter: 0.5 } }, async (server) => {
    const child = await spawnInstall(w, server.url, [], { [DOWNLOAD_ENV.timeout]: "60" });
    // Wait until half the archive is in the cache's part file: the body has stalled.
    const deadline = Date.now() + 15_000;
    const half = Math.floor(fx.sizes[fx.zst] / 2);
    for (;;) {
      const parts = (await names(w.cache)).filter((n) => n.endsWith(".part"));
      const size = parts.length ? (await Deno.stat(join(w.cache, parts[0]))).size : 0;
      if (size >= half) break;
      assert(Date.now() < deadline, "the download never reached the stall");
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGTERM");
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 143, stderr);
    assertMatch(stderr, /^error: Interrupted by SIGTERM$/m);
    await assertNothingLeft(w);
    assertEquals(await names(w.cache), []);
  });
  await w.remove();
});

Deno.test("install rejects a bad PYPRIME_HTTP_TIMEOUT as a usage error", async () => {
  const w = await world();
  const r = await install(w, [fx.tag], ["--mirror", w.mirror], { [DOWNLOAD_ENV.timeout]: "soon" });
  assertEquals(r.code, 2, r.stderr);
  assertMatch(r.stderr, /error: PYPRIME_HTTP_TIMEOUT must be a number of 0 or more, not soon/);
  await w.remove();
});

Deno.test("install with a wrong Content-Length fails cleanly or is caught by the checksum", async () => {
  const w = await world();
  const size = fx.sizes[fx.zst];
  await withServer(w.mirror, {}, async (server) => {
    // Announces more than it sends: resuming at the real end gets 416. Today that is
    // an error after two fresh starts; a client that reads the 416's `bytes */SIZE`
    // as "complete" would let the checksum decide and install. Either is fine.
    server.setFault(ARCHIVE_PATH, { contentLength: size + 1000 });
    const longer = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache]);
    if (longer.code === 0) {
      await assertInstalled(w);
      await Deno.remove(join(w.dir, KEY), { recursive: true });
      await Deno.remove(w.cache, { recursive: true });
    } else {
      assertOneError(longer, re(`${server.url}${ARCHIVE_PATH}`), /416/);
    }
    await assertNothingLeft(w);

    // Announces less: fetch stops there, and the truncated archive is refused.
    server.setFault(ARCHIVE_PATH, { contentLength: Math.floor(size / 2) });
    const shorter = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache]);
    assertOneError(shorter, re(ARCHIVE));
    await assertNothingLeft(w);
    assertEquals(await names(w.cache), []);
  });
  await w.remove();
});

Deno.test("install refuses a wrong digest naming both digests; nothing installed or cached", async () => {
  const wrong = "e".repeat(64);
  const w = await world({ sha256: wrong });
  await withMirror(w.mirror, async (server) => {
    const r = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache]);
    assertOneError(r, re(`expected sha256 ${wrong}, got ${fx.sha256[fx.zst]}`), re(ARCHIVE));
    await assertNothingLeft(w);
    assertEquals(await names(w.cache), []);
  });
  await w.remove();
});

Deno.test("install follows a redirect to a second server", async () => {
  const w = await world();
  await withMirror(w.mirror, async (assets) => {
    const faults = { [ARCHIVE_PATH]: { redirectTo: `${assets.url}${ARCHIVE_PATH}` } };
    await withServer(w.mirror, faults, async (front) => {
      const r = await install(w, [fx.tag], ["--mirror", front.url]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(gets(front).map((q) => q.status), [302]);
      assertEquals(gets(assets).map((q) => q.status), [200]);
      await assertInstalled(w);
    });
  });
  await w.remove();
});

// ---------------------------------------------------------------------------------
// Local mirrors, offline, cache.

Deno.test("install reads a file:// mirror and a plain folder; --offline allows only those", async () => {
  const w = await world();
  const fileUrl = pathToFileURL(w.mirror).href;
  const viaUrl = await install(w, [fx.tag], ["--mirror", fileUrl, "--offline"]);
  assertEquals(viaUrl.code, 0, viaUrl.stderr);
  await assertInstalled(w);

  const viaFolder = await install(w, [fx.tag], ["--mirror", `${w.mirror}/`, "--reinstall"]);
  assertEquals(viaFolder.code, 0, viaFolder.stderr);
  assertMatch(viaFolder.stderr, re(`Reinstalled ${KEY}`));
  await assertInstalled(w);

  await withMirror(w.mirror, async (server) => {
    const offline = await install(w, [fx.tag], [
      "--mirror",
      server.url,
      "--offline",
      "--reinstall",
    ]);
    assertOneError(offline, /offline/, re(`${server.url}${ARCHIVE_PATH}`));
    assertEquals(server.requests, []);
  });
  // The failed reinstall kept the previous installation.
  await assertInstalled(w);

  // A catalog URL is read over the network, which --offline forbids too.
  await withMirror(w.mirror, async (server) => {
    const catalogUrl = `${server.url}/download-metadata.json`;
    const local = ["--mirror", w.mirror, "--reinstall", "--catalog", catalogUrl];
    const offline = await install(w, [fx.tag], [...local, "--offline"]);
    assertOneError(offline, re(`Cannot read catalog ${catalogUrl}: offline mode`));
    assertEquals(server.requests, []);
    const online = await install(w, [fx.tag], local);
    assertEquals(online.code, 0, online.stderr);
    assertEquals(server.requests.map((q) => [q.path, q.status]), [
      ["/download-metadata.json", 200],
    ]);
  });

  const relative = await install(w, [fx.tag], ["--mirror", "mirror", "--reinstall"]);
  assertEquals(relative.code, 2, relative.stderr);
  assertMatch(relative.stderr, /error: Invalid mirror "mirror"/);
  await w.remove();
});

Deno.test("install keeps the download in --cache-dir and installs from it with the server gone", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const r = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await names(w.cache), [ARCHIVE]);
    const cached = await Deno.readFile(join(w.cache, ARCHIVE));
    assertEquals(cached.length, fx.sizes[fx.zst]);
    const mirror = server.url;
    await server.close();

    const gone = await pyprime(w, ["uninstall", fx.tag, "--install-dir", w.dir]);
    assertEquals(gone.code, 0, gone.stderr);
    assertMatch(gone.stderr, re(`Uninstalled ${KEY}`));
    assertEquals((await names(w.dir)).filter((n) => !n.startsWith(".")), []);

    // The same mirror URL, nothing listening: the cache answers (env var this time).
    const again = await install(w, [fx.tag], ["--mirror", mirror], { PYPRIME_CACHE_DIR: w.cache });
    assertEquals(again.code, 0, again.stderr);
    await assertInstalled(w);
    const offline = await install(w, [fx.tag], [
      "--mirror",
      mirror,
      "--cache-dir",
      w.cache,
      "--offline",
      "--reinstall",
    ]);
    assertEquals(offline.code, 0, offline.stderr);
    assertEquals(await names(w.cache), [ARCHIVE]);
  });
  await w.remove();
});

Deno.test("install works air-gapped: inside a network namespace from a file:// mirror", async () => {
  const probe = await new Deno.Command("unshare", { args: ["-n", "true"], stderr: "piped" })
    .output().catch((err: Error) => ({ code: -1, stderr: new TextEncoder().encode(err.message) }));
  assert(
    probe.code === 0,
    `\`unshare -n true\` failed (${new TextDecoder().decode(probe.stderr).trim()}): ` +
      "this test needs root (or CAP_SYS_ADMIN) and util-linux's unshare",
  );
  const w = await world();
  const unshare = ["unshare", "-n"];
  await withMirror(w.mirror, async (server) => {
    // The namespace really has no network: the loopback server outside is unreachable.
    const cut = await install(w, [fx.tag], ["--mirror", server.url], {
      [DOWNLOAD_ENV.retries]: "1",
    }, unshare);
    assertOneError(cut, re(`${server.url}${ARCHIVE_PATH}`));
    assertEquals(server.requests, []);
  });
  const r = await install(
    w,
    [fx.tag],
    [
      "--mirror",
      pathToFileURL(w.mirror).href,
      "--offline",
      "--cache-dir",
      w.cache,
    ],
    {},
    unshare,
  );
  assertEquals(r.code, 0, r.stderr);
  await assertInstalled(w);
  await w.remove();
});

// ---------------------------------------------------------------------------------
// Several requests, already installed.

Deno.test("install of two requests keeps the one that worked and names the 404 of the other", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const r = await install(w, [fx.tag, `${MAJOR}.${MINOR + 1}`], ["--mirror", server.url]);
    assertEquals(r.code, 1, r.stderr);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error: "));
    assertEquals(errors.length, 1, r.stderr);
    assertMatch(errors[0], re(encodeURIComponent(archiveName(NEWER))));
    assertMatch(errors[0], /404/);
    assertMatch(
      r.stderr,
      re(`Installed 1 request of 2 (${fx.tag}); failed: ${MAJOR}.${MINOR + 1}`),
    );
    assertEquals(
      server.requests.map((q) => q.path).sort(),
      [ARCHIVE_PATH, `/${BUILD}/${encodeURIComponent(archiveName(NEWER))}`].sort(),
    );
    await assertInstalled(w);
  });
  await w.remove();
});

/** A second fixture set from another CPython minor: Debian's 3.14 (3.15 if that is the main one). */
async function otherFixture(): Promise<{ archive: string; key: string }> {
  const set = await debianFixtures(fx.tag === "3.14" ? "3.15" : "3.14");
  assert(set.tag !== fx.tag, `the second CPython is ${set.tag} too`);
  return { archive: set.zst, key: `cpython-${set.version}-linux-x86_64-gnu` };
}

Deno.test("install of a version and an archive path installs both in one command", async () => {
  const other = await otherFixture();
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const r = await install(w, [fx.tag, other.archive], ["--mirror", server.url, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const outcomes = JSON.parse(r.stdout);
    assertEquals(
      outcomes.map((o: { key: string; status: string }) => [o.key, o.status]),
      [[KEY, "installed"], [other.key, "installed"]],
    );
    assertEquals(
      (await names(w.dir)).filter((n) => !n.startsWith(".")),
      [other.key, KEY, minorDirName(other.key)!, minorDirName(KEY)!].sort(),
    );
    for (const o of outcomes) {
      const v = await runPython(o.python, "import sys; print('%d.%d.%d' % sys.version_info[:3])");
      assertEquals(`cpython-${v}-linux-x86_64-gnu`, o.key);
    }
  });
  await w.remove();
});

Deno.test("install of the same Python twice in one command installs it once", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const r = await install(w, [fx.tag, fx.zst], ["--mirror", server.url, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const statuses = JSON.parse(r.stdout).map((o: { status: string }) => o.status);
    assertEquals(statuses, ["installed", "already-installed"]);
    await assertInstalled(w);
  });
  await w.remove();
});

Deno.test("install of an installed version says so and sends no request", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const first = await install(w, [fx.tag], ["--mirror", server.url]);
    assertEquals(first.code, 0, first.stderr);
    server.clear();
    const again = await install(w, [fx.tag, KEY], ["--mirror", server.url, "--json"]);
    assertEquals(again.code, 0, again.stderr);
    assertMatch(again.stderr, re(`${KEY} is already installed`));
    const outcomes = JSON.parse(again.stdout);
    assertEquals(outcomes.map((o: { status: string }) => o.status), [
      "already-installed",
      "already-installed",
    ]);
    assertEquals(server.requests, []);
    const text = await install(w, [`==${fx.version}`], ["--mirror", server.url]);
    assertEquals(text.code, 0, text.stderr);
    assertEquals(text.stdout.trim(), join(await Deno.realPath(w.dir), KEY, "bin", "python3"));
    assertEquals(server.requests, []);
  });
  await w.remove();
});

Deno.test("install of an installed x86_64_v3 key sends no request", async () => {
  // PBS publishes x86-64-v3 builds; the interpreter cannot tell its level, so the
  // installation is keyed without it and the key request must still find it.
  const v3 = `cpython-${fx.version}-linux-x86_64_v3-gnu`;
  const extra = { [v3]: entry(fx.version, ARCHIVE, fx.sha256[fx.zst], "x86_64", "v3") };
  const w = await world({ extra });
  await withMirror(w.mirror, async (server) => {
    const v3Platform = ["--mirror", server.url, "--platform", "linux-x86_64_v3-gnu", "--json"];
    const first = await install(w, [v3], v3Platform);
    assertEquals(first.code, 0, first.stderr);
    assertEquals(JSON.parse(first.stdout)[0].status, "installed");
    assertEquals(gets(server).length, 1);
    for (const request of [v3, fx.tag]) {
      const again = await install(w, [request], v3Platform);
      assertEquals(again.code, 0, again.stderr);
      assertEquals(JSON.parse(again.stdout)[0].status, "already-installed", request);
      assertEquals(gets(server).length, 1, `${request} reached the server`);
    }
  });
  await w.remove();
});

// ---------------------------------------------------------------------------------
// list, find, uninstall.

Deno.test("list, find and uninstall over installed and catalog Pythons, in text and JSON", async () => {
  const w = await world();
  const ok = await install(w, [fx.tag], ["--mirror", w.mirror]);
  assertEquals(ok.code, 0, ok.stderr);
  const dir = await Deno.realPath(w.dir);
  const python = join(dir, KEY, "bin", "python3");
  // A second, older installation of another minor, made on disk (only its name counts here).
  const older = `cpython-${OLDER}-linux-x86_64-gnu`;
  await Deno.mkdir(join(w.dir, older, "bin"), { recursive: true });
  const cat = ["--catalog", w.catalog];
  const d = ["--install-dir", w.dir];

  // Newest first, as uv lists them; keys padded to one column.
  const installed = await pyprime(w, ["list", "--only-installed", ...d]);
  assertEquals(installed.code, 0, installed.stderr);
  const width = Math.max(older.length, KEY.length);
  assertEquals(installed.stdout.split("\n").filter(Boolean), [
    `${KEY.padEnd(width)}  ${python}`,
    `${older.padEnd(width)}  ${join(dir, older, "bin", "python3")}`,
  ]);
  const installedJson = await pyprime(w, ["--json", "list", "--only-installed", ...d]);
  const [newest, second] = JSON.parse(installedJson.stdout);
  assertEquals(newest, {
    key: KEY,
    version: fx.version,
    version_parts: { major: MAJOR, minor: MINOR, patch: Number(fx.version.split(".")[2]) },
    path: python,
    symlink: `python${fx.tag}`,
    url: null,
    os: "linux",
    variant: "default",
    implementation: "cpython",
    arch: "x86_64",
    libc: "gnu",
    build: BUILD,
    status: "installed",
  });
  // Made by hand, so no BUILD file and no interpreter link.
  assertEquals([second.key, second.build, second.symlink], [older, null, null]);

  const available = await pyprime(w, ["--json", "list", "--only-available", ...cat, ...d]);
  assertEquals(available.code, 0, available.stderr);
  const rows = JSON.parse(available.stdout) as { key: string; url: string; status: string }[];
  // --only-available is kept as an alias of uv's --only-downloads.
  const downloads = await pyprime(w, ["--json", "list", "--only-downloads", ...cat, ...d]);
  assertEquals(JSON.parse(downloads.stdout), rows);
  assertEquals(rows.map((r) => r.key), [
    `cpython-${NEWER}-linux-x86_64-gnu`,
    KEY,
    `cpython-${OLDER}-linux-x86_64-gnu`,
  ]);
  assert(rows.every((r) => r.status === "available" && r.url.startsWith(PBS_PREFIX)));
  const text = await pyprime(w, ["list", "--only-available", ...cat, ...d]);
  // Keys are padded to one column, so the gap depends on the longest key.
  assertMatch(
    text.stdout,
    new RegExp(`${re(`cpython-${NEWER}-linux-x86_64-gnu`).source} +<download available>`),
  );

  const all = await pyprime(w, ["--json", "list", "--all-platforms", ...cat, ...d]);
  const allKeys = JSON.parse(all.stdout).map((r: { key: string; status: string }) =>
    `${r.key} ${r.status}`
  );
  assert(allKeys.includes(`cpython-${fx.version}-linux-aarch64-gnu available`), allKeys.join());
  assert(allKeys.includes(`${KEY} installed`), allKeys.join());
  assert(!allKeys.includes(`${KEY} available`), "an installed key is listed once");
  assert(!allKeys.some((k: string) => k.includes(PRE)), "no pre-release unless asked");

  const filtered = await pyprime(w, ["--json", "list", fx.tag, ...cat, ...d]);
  assertEquals(
    JSON.parse(filtered.stdout).map((r: { key: string; status: string }) => r.status),
    ["installed"],
  );

  const where = await pyprime(w, ["dir"], { PYPRIME_PYTHON_INSTALL_DIR: w.dir });
  assertEquals(where.stdout, `${w.dir}\n`);
  const whereJson = await pyprime(w, ["--json", "dir", ...d]);
  assertEquals(JSON.parse(whereJson.stdout), { installDir: w.dir });

  const found = await pyprime(w, ["find", fx.tag, ...d]);
  const stable = join(dir, minorDirName(KEY)!, "bin", "python3");
  assertEquals([found.code, found.stdout], [0, `${stable}\n`]);
  const resolved = await pyprime(w, ["find", fx.tag, "--resolve-links", ...d]);
  assertEquals(resolved.stdout, `${python}\n`);
  const foundJson = await pyprime(w, ["--json", "find", `>=${MAJOR}`, ...d]);
  // The same row as list --json, seen through the minor-version link.
  assertEquals(JSON.parse(foundJson.stdout), { ...newest, path: stable });
  const missing = await pyprime(w, ["find", `${MAJOR}.${MINOR + 1}`, ...d]);
  assertOneError(missing, re(`No installed Python matches "${MAJOR}.${MINOR + 1}"`));
  assertEquals(missing.stdout, "");

  const none = await pyprime(w, ["uninstall", `${MAJOR}.${MINOR + 1}`, ...d]);
  assertOneError(none, /No installed Python matches/);
  const bare = await pyprime(w, ["uninstall", ...d]);
  assertEquals(bare.code, 2, bare.stderr);
  assertMatch(
    bare.stderr,
    /error: Nothing to uninstall\nhint: name a version or key, or pass --all/,
  );
  const one = await pyprime(w, ["--json", "uninstall", fx.tag, ...d]);
  assertEquals(one.code, 0, one.stderr);
  assertEquals(JSON.parse(one.stdout).removed, [KEY]);
  // Made by hand without an interpreter: no minor-version link for it.
  assertEquals(await names(w.dir), [".lock", ".staging", older]);
  const rest = await pyprime(w, ["uninstall", "--all", ...d]);
  assertEquals(rest.code, 0, rest.stderr);
  assertMatch(rest.stderr, re(`Uninstalled ${older}`));
  await assertNothingLeft(w);
  const empty = await pyprime(w, ["find", fx.tag, ...d]);
  assertEquals(empty.code, 1);
  await w.remove();
});

Deno.test("install interrupted while installing from the cache keeps the cached archive", async () => {
  const w = await world();
  await withMirror(w.mirror, async (server) => {
    const first = await install(w, [fx.tag], ["--mirror", server.url, "--cache-dir", w.cache]);
    assertEquals(first.code, 0, first.stderr);
  });
  assertEquals(await names(w.cache), [ARCHIVE]);
  // Removed by hand, with its minor-version link.
  await Deno.remove(join(w.dir, KEY), { recursive: true });
  await Deno.remove(join(w.dir, minorDirName(KEY)!));
  // The server is gone: only the cache can serve this install, with compilation on.
  const child = await spawnInstall(w, "http://127.0.0.1:9/", ["--offline"]);
  const deadline = Date.now() + 15_000;
  while ((await listTree(join(w.dir, ".staging"))).filter((p) => p.includes("/")).length < 20) {
    assert(Date.now() < deadline, "the install never started extracting");
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGINT");
  const out = await child.output();
  assertEquals(out.code, 130, new TextDecoder().decode(out.stderr));
  assertEquals(await names(w.cache), [ARCHIVE]);
  assertEquals((await Deno.stat(join(w.cache, ARCHIVE))).size, fx.sizes[fx.zst]);
  await assertNothingLeft(w);
  await w.remove();
});

Deno.test("install --platform for another machine names the install from the catalog, compiles and links nothing", async () => {
  const w = await world();
  const foreignKey = `cpython-${fx.version}-linux-aarch64-gnu`;
  await Deno.writeTextFile(
    w.catalog,
    JSON.stringify({
      [foreignKey]: entry(fx.version, ARCHIVE, fx.sha256[fx.zst], "aarch64"),
    }),
  );
  const r = await pyprime(w, [
    "install",
    fx.tag,
    "--catalog",
    w.catalog,
    "--platform",
    "linux-aarch64-gnu",
    "--install-dir",
    w.dir,
    "--mirror",
    w.mirror,
    "--offline",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const [outcome] = JSON.parse(r.stdout);
  assertEquals([outcome.key, outcome.foreign, outcome.bytecode], [foreignKey, true, undefined]);
  assertMatch(r.stderr, /warning: Bytecode not compiled: .*cannot run on this machine/);
  const stdlib = join(w.dir, foreignKey, "lib", `python${fx.tag}`);
  assert((await listTree(stdlib)).every((p) => !p.endsWith(".pyc")), "no bytecode expected");
  const data = (await names(stdlib)).find((n) => n.startsWith("_sysconfigdata_"))!;
  assertMatch(await Deno.readTextFile(join(stdlib, data)), re(join(w.dir, foreignKey)));
  assertEquals(await names(join(w.home, ".local", "bin")), []);
  await w.remove();
});
