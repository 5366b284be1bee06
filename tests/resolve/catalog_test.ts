import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  type Catalog,
  CatalogError,
  type Download,
  flavourOf,
  loadCatalog,
  parseCatalog,
  PBS_PREFIX,
  toCompact,
} from "../../src/resolve/catalog.ts";
import { catalogAgeDays, matching, mirrorUrl, resolve } from "../../src/resolve/match.ts";
import { embeddedDigests } from "../../src/resolve/catalog_digests.ts";
import type { Platform } from "../../src/resolve/platform.ts";
import { parseRequest } from "../../src/resolve/request.ts";
import { RequestError } from "../../src/resolve/request_error.ts";
import {
  catalogFromGithub,
  formatCompact,
  main as updateCatalog,
  parseSha256Sums,
  type Release,
} from "../../scripts/update_catalog.ts";

const TRIMMED = fileURLToPath(
  new URL("../support/data/uv-download-metadata-trimmed.json", import.meta.url),
);
const EMBEDDED = fileURLToPath(new URL("../../src/resolve/catalog.json", import.meta.url));

const V3: Platform = { os: "linux", arch: "x86_64", archVariant: "v3", libc: "gnu" };
const V4: Platform = { ...V3, archVariant: "v4" };
const V1: Platform = { os: "linux", arch: "x86_64", libc: "gnu" };
const MUSL_ARM: Platform = { os: "linux", arch: "aarch64", libc: "musl" };
const MAC: Platform = { os: "macos", arch: "aarch64", libc: "none" };

let trimmed: Catalog | undefined;
async function catalog(): Promise<Catalog> {
  return trimmed ??= await loadCatalog(TRIMMED);
}

async function expectedCount(): Promise<number> {
  const data = JSON.parse(await Deno.readTextFile(TRIMMED)) as Record<
    string,
    { name: string; os: string }
  >;
  return Object.values(data).filter((entry) =>
    entry.name === "cpython" && entry.os !== "emscripten"
  ).length;
}

function pick(request: string, platform: Platform, options = {}): string {
  return resolve(trimmedSync(), parseRequest(request, { exists: () => false }), platform, options)
    .key;
}

function trimmedSync(): Catalog {
  assert.ok(trimmed, "load the catalog first");
  return trimmed;
}

function noMatch(request: string, platform: Platform): RequestError {
  try {
    pick(request, platform);
  } catch (error) {
    assert.ok(error instanceof RequestError, String(error));
    return error;
  }
  assert.fail(`${request} unexpectedly resolved`);
}

Deno.test("loadCatalog reads uv's format: CPython PBS builds only, darwin renamed macos", async () => {
  const loaded = await catalog();
  assert.equal(loaded.downloads.length, await expectedCount());
  assert.ok(loaded.downloads.every((download) => download.url.startsWith(PBS_PREFIX)));
  assert.ok(loaded.downloads.some((download) => download.os === "macos"));
  assert.ok(
    !loaded.downloads.some((download) => download.os === "darwin" || download.os === "emscripten"),
  );
  const stripped = loaded.downloads.find((download) =>
    download.key === "cpython-3.14.7-linux-x86_64_v3-gnu"
  );
  assert.equal(stripped?.flavour, "install_only_stripped");
  assert.equal(stripped?.archVariant, "v3");
  assert.equal(stripped?.build, "20260814");
  assert.match(stripped?.sha256 ?? "", /^[0-9a-f]{64}$/);
  const debug = loaded.downloads.find((download) =>
    download.key === "cpython-3.14.7+debug-linux-x86_64-gnu"
  );
  assert.equal(debug?.flavour, "full");
  assert.equal(loaded.newestBuild, "20260814");
});

Deno.test("the compact format round-trips every field", async () => {
  const loaded = await catalog();
  const text = formatCompact(toCompact(loaded.downloads));
  const again = parseCatalog(text, "compact");
  assert.deepEqual(again.downloads, loaded.downloads);
  assert.ok(
    text.length < JSON.stringify(loaded.downloads).length / 3,
    "compact form is much smaller",
  );
});

Deno.test("update_catalog regenerates a catalog with one entry per CPython build of the metadata", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pyprime_catalog_" });
  try {
    const output = join(dir, "catalog.json");
    assert.equal(await updateCatalog([TRIMMED, "--output", output]), 0);
    const regenerated = await loadCatalog(output);
    assert.equal(regenerated.downloads.length, await expectedCount());
    assert.deepEqual(regenerated.downloads, (await catalog()).downloads);
    const first = await Deno.readTextFile(output);
    assert.equal(await updateCatalog([pathToFileURL(TRIMMED).href, "--output", output]), 0);
    assert.equal(await Deno.readTextFile(output), first, "output is deterministic");
    assert.equal(await updateCatalog([]), 2, "no input prints usage");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the embedded catalog is the script's deterministic output and stays small", async () => {
  const embedded = await loadCatalog();
  const text = await Deno.readTextFile(EMBEDDED);
  assert.equal(formatCompact(toCompact(embedded.downloads)), text);
  assert.ok(text.length < 1_000_000, `catalog.json is ${text.length} bytes`);
  assert.ok(embedded.downloads.length > 1000);
  assert.match(embedded.newestBuild, /^\d{8}$/);
  assert.equal(
    new Set(embedded.downloads.map((download) => download.key)).size,
    embedded.downloads.length,
  );
});

Deno.test("resolve picks the newest stable release at the best supported x86-64 level", async () => {
  await catalog();
  assert.equal(pick("3", V3), "cpython-3.14.7-linux-x86_64_v3-gnu");
  assert.equal(pick("3.14", V4), "cpython-3.14.7-linux-x86_64_v4-gnu");
  assert.equal(pick("3.14", V1), "cpython-3.14.7-linux-x86_64-gnu");
  assert.equal(pick("3.13", V3), "cpython-3.13.15-linux-x86_64_v3-gnu");
  assert.equal(pick(">=3.12,<3.14", V3), "cpython-3.13.15-linux-x86_64_v3-gnu");
  assert.equal(pick("~=3.13.0", V3), "cpython-3.13.15-linux-x86_64_v3-gnu");
  assert.equal(pick("3.12", MAC), "cpython-3.12.14-macos-aarch64-none");
});

Deno.test("resolve takes pre-releases only when the request names one or allows them", async () => {
  await catalog();
  assert.equal(pick("3.15.0rc1", V3), "cpython-3.15.0rc1-linux-x86_64_v3-gnu");
  assert.equal(pick("3.15", V3, { prereleases: true }), "cpython-3.15.0rc1-linux-x86_64_v3-gnu");
  assert.equal(pick(">=3.14.5rc1,<3.14.6", V3), "cpython-3.14.5rc1-linux-x86_64_v3-gnu");
  const error = noMatch("3.15", V3);
  assert.match(error.message, /No stable CPython matches "3\.15".*3\.15\.0rc1/);
  assert.match(error.hint ?? "", /pyprime install 3\.15\.0rc1/);
  const listed = matching(trimmedSync(), parseRequest("==3.14.*"), V3, { unique: true }).map((d) =>
    d.key
  );
  assert.ok(!listed.some((key) => key.includes("rc")), listed.join(" "));
});

Deno.test("resolve honours variants, musl and explicit keys", async () => {
  await catalog();
  assert.equal(pick("3.14t", V3), "cpython-3.14.7+freethreaded-linux-x86_64_v3-gnu");
  assert.equal(pick("3.14+debug", V3), "cpython-3.14.7+debug-linux-x86_64_v3-gnu");
  assert.equal(pick("3.14t+debug", V1), "cpython-3.14.7+freethreaded+debug-linux-x86_64-gnu");
  assert.equal(pick("3.13", MUSL_ARM), "cpython-3.13.15-linux-aarch64-musl");
  assert.equal(pick("3.13t", MUSL_ARM), "cpython-3.13.15+freethreaded-linux-aarch64-musl");
  assert.equal(
    pick("cpython-3.13.14-linux-aarch64-musl", V3),
    "cpython-3.13.14-linux-aarch64-musl",
  );
  assert.equal(
    pick("cpython-3.14.7-linux-x86_64_v4-gnu", V3),
    "cpython-3.14.7-linux-x86_64_v4-gnu",
  );
  assert.equal(pick("cpython-3.14-linux-x86_64-gnu", V3), "cpython-3.14.7-linux-x86_64_v3-gnu");
  assert.equal(pick("cpython-3.13-darwin-aarch64-none", V3), "cpython-3.13.15-macos-aarch64-none");
  assert.equal(pick("cpython-3.13-linux-x86_64-musl", V3), "cpython-3.13.15-linux-x86_64-musl");
});

Deno.test("a request that matches nothing lists the nearest versions for the platform", async () => {
  await catalog();
  const older = noMatch("3.9", V3);
  assert.match(older.message, /nearest available: 3\.14\.7, 3\.13\.15, 3\.12\.14, 3\.8\.2$/);
  assert.match(older.message, /linux-x86_64_v3-gnu/);
  assert.ok(older.hint);
  const patch = noMatch("3.13.99", V3);
  assert.match(patch.message, /nearest available: 3\.13\.15, 3\.13\.14$/);
  const freethreaded = noMatch("3.12t", V3);
  assert.match(freethreaded.message, /No freethreaded CPython matches "3\.12t"/);
  const nowhere = noMatch("3.13", { os: "linux", arch: "riscv64", libc: "gnu" });
  assert.match(nowhere.message, /linux-riscv64-gnu/);
  assert.match(nowhere.hint ?? "", /linux-x86_64-gnu/);
});

Deno.test("matching lists every download, or one per version with unique", async () => {
  const loaded = await catalog();
  const all = matching(loaded, parseRequest("3.14.7"), V4);
  assert.deepEqual(all.map((download) => download.archVariant ?? "v1"), ["v4", "v3", "v2", "v1"]);
  const unique = matching(loaded, parseRequest("3.14"), V4, { unique: true });
  assert.deepEqual(unique.map((download) => download.key), [
    "cpython-3.14.7-linux-x86_64_v4-gnu",
    "cpython-3.14.6-linux-x86_64_v4-gnu",
  ]);
  const anywhere = matching(loaded, parseRequest("3.14.7"));
  assert.ok(new Set(anywhere.map((download) => download.os)).size >= 3);
  assert.throws(() => matching(loaded, parseRequest("-")), RequestError);
});

Deno.test("loadCatalog reads file:// and http:// catalogs and reports unreadable ones", async () => {
  const fromFileUrl = await loadCatalog(pathToFileURL(TRIMMED).href);
  assert.equal(fromFileUrl.downloads.length, await expectedCount());

  const body = await Deno.readTextFile(TRIMMED);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (request) =>
      new URL(request.url).pathname === "/meta.json"
        ? new Response(body)
        : new Response("no", { status: 404 }),
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const fromHttp = await loadCatalog(`${base}/meta.json`);
    assert.equal(fromHttp.downloads.length, await expectedCount());
    await assert.rejects(loadCatalog(`${base}/missing.json`), (error: unknown) => {
      assert.ok(error instanceof CatalogError);
      assert.match(error.message, /missing\.json: HTTP 404/);
      return true;
    });
  } finally {
    await server.shutdown();
  }
  await assert.rejects(loadCatalog("/nonexistent/catalog.json"), (error: unknown) => {
    assert.ok(error instanceof CatalogError);
    assert.match(error.message, /\/nonexistent\/catalog\.json/);
    assert.match(error.hint ?? "", /PYPRIME_CATALOG/);
    return true;
  });
});

Deno.test("parseCatalog rejects malformed catalogs naming the bad part", () => {
  assert.throws(() => parseCatalog("{", "x.json"), /x\.json: not valid JSON/);
  assert.throws(() => parseCatalog("[1]", "x.json"), /x\.json: expected a JSON object/);
  assert.throws(
    () =>
      parseCatalog(
        JSON.stringify({
          "cpython-3.13.9-linux-x86_64-gnu": {
            name: "cpython",
            url: "https://x/cpython-3.13.9.tar.gz",
          },
        }),
        "uv.json",
      ),
    /uv\.json: entry "cpython-3\.13\.9-linux-x86_64-gnu" is not a uv download entry/,
  );
  const compact = {
    format: "pyprime-catalog",
    version: 1,
    prefix: PBS_PREFIX,
    targets: [],
    downloads: [["3.13.9", "20251014", 0, null]],
  };
  assert.throws(
    () => parseCatalog(JSON.stringify(compact), "c.json"),
    /c\.json: download 0 is malformed/,
  );
  assert.throws(
    () => parseCatalog(JSON.stringify({ ...compact, version: 9 }), "c.json"),
    /format version 9/,
  );
  assert.throws(() => parseCatalog("{}", "x.json"), /x\.json: no CPython downloads/);
});

Deno.test("mirrorUrl swaps the PBS prefix for https, file:// and absolute folder mirrors", () => {
  const suffix = "20251014/cpython-3.13.9%2B20251014-x86_64-unknown-linux-gnu-install_only.tar.gz";
  const download = { url: PBS_PREFIX + suffix };
  assert.equal(mirrorUrl(download), download.url);
  assert.equal(mirrorUrl(download, ""), download.url);
  assert.equal(
    mirrorUrl(download, "https://mirror.example/pbs"),
    `https://mirror.example/pbs/${suffix}`,
  );
  assert.equal(
    mirrorUrl(download, "https://mirror.example/pbs/"),
    `https://mirror.example/pbs/${suffix}`,
  );
  assert.equal(mirrorUrl(download, "file:///srv/pbs/"), `file:///srv/pbs/${suffix}`);
  const local = mirrorUrl(download, "/srv/pbs mirror");
  assert.equal(local, `file:///srv/pbs%20mirror/${suffix}`);
  assert.equal(
    fileURLToPath(local),
    `/srv/pbs mirror/20251014/cpython-3.13.9+20251014-x86_64-unknown-linux-gnu-install_only.tar.gz`,
  );
  assert.equal(
    mirrorUrl({ url: "https://elsewhere.example/a.tar.gz" }, "/srv/pbs"),
    "https://elsewhere.example/a.tar.gz",
  );
  assert.throws(() => mirrorUrl(download, "mirror.example/pbs"), CatalogError);
});

Deno.test("catalogAgeDays counts days since the newest build", () => {
  assert.equal(catalogAgeDays({ newestBuild: "20260814" }, new Date("2026-08-24T12:00:00Z")), 10);
  assert.ok(Number.isNaN(catalogAgeDays({ newestBuild: "" })));
});

Deno.test("flavourOf reads the flavour from the file name", () => {
  assert.equal(
    flavourOf(
      `${PBS_PREFIX}1/cpython-3.13.9%2B1-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz`,
    ),
    "install_only_stripped",
  );
  assert.equal(
    flavourOf(`${PBS_PREFIX}1/cpython-3.13.9%2B1-x86_64-unknown-linux-gnu-install_only.tar.gz`),
    "install_only",
  );
  assert.equal(
    flavourOf(`${PBS_PREFIX}1/cpython-3.13.9%2B1-x86_64-unknown-linux-gnu-debug-full.tar.zst`),
    "full",
  );
});

// ---------------------------------------------------------------------------
// --from-github, against a crafted release listing

const SHA = (digit: string) => digit.repeat(64);

function asset(release: string, name: string, digest?: string) {
  return {
    name,
    browser_download_url: `${PBS_PREFIX}${release}/${encodeURIComponent(name)}`,
    digest: digest ? `sha256:${digest}` : null,
  };
}

const NEW = "20251014";
const OLD = "20250101";
const LEGACY = "20211017";
const RELEASES: Release[] = [
  {
    tag_name: NEW,
    assets: [
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-pgo+lto-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-install_only.tar.gz`),
      asset(
        NEW,
        `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz`,
        SHA("1"),
      ),
      asset(
        NEW,
        `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz.sha256`,
      ),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-debug-full.tar.zst`),
      asset(
        NEW,
        `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-freethreaded+pgo+lto-full.tar.zst`,
      ),
      asset(
        NEW,
        `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-freethreaded-install_only_stripped.tar.gz`,
      ),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-freethreaded+debug-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64_v3-unknown-linux-musl-noopt-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64_v3-unknown-linux-musl-lto-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-aarch64-apple-darwin-install_only.tar.gz`),
      asset(NEW, `cpython-3.13.9+${NEW}-aarch64-apple-darwin-pgo+lto-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64-pc-windows-msvc-shared-pgo-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-x86_64-pc-windows-msvc-install_only.tar.gz`),
      asset(NEW, `cpython-3.13.9+${NEW}-i686-pc-windows-msvc-static-noopt-full.tar.zst`),
      asset(NEW, `cpython-3.13.9+${NEW}-ppc64le-unknown-linux-gnu-install_only.tar.gz`),
      asset(NEW, `cpython-3.7.9+${NEW}-x86_64-unknown-linux-gnu-install_only.tar.gz`),
      asset(NEW, "SHA256SUMS"),
    ],
  },
  {
    tag_name: OLD,
    assets: [
      asset(OLD, `cpython-3.13.9+${OLD}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz`),
      asset(OLD, `cpython-3.12.8+${OLD}-x86_64-unknown-linux-musl-install_only.tar.gz`),
      asset(OLD, `cpython-3.12.8+${OLD}-x86_64-unknown-linux-gnu-install_only.tar.gz`),
      asset(OLD, "SHA256SUMS"),
    ],
  },
  {
    tag_name: LEGACY,
    assets: [
      asset(LEGACY, `cpython-3.9.7-x86_64-unknown-linux-gnu-pgo+lto-${LEGACY}T1616.tar.zst`),
      asset(LEGACY, `cpython-3.9.7-x86_64-unknown-linux-gnu-debug-${LEGACY}T1616.tar.zst`),
      asset(LEGACY, "SHA256SUMS"),
    ],
  },
];

const SUMS: Record<string, string> = {
  [NEW]: [
    `${SHA("1")}  cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz`,
    `${SHA("2")}  cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-debug-full.tar.zst`,
    `${
      SHA("3")
    }  cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-freethreaded-install_only_stripped.tar.gz`,
    `${SHA("4")}  cpython-3.13.9+${NEW}-x86_64_v3-unknown-linux-musl-lto-full.tar.zst`,
    `${SHA("5")}  cpython-3.13.9+${NEW}-aarch64-apple-darwin-install_only.tar.gz`,
    `${SHA("6")}  cpython-3.13.9+${NEW}-x86_64-pc-windows-msvc-install_only.tar.gz`,
    `${SHA("7")}  cpython-3.13.9+${NEW}-ppc64le-unknown-linux-gnu-install_only.tar.gz`,
    `${SHA("8")}  cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-freethreaded+debug-full.tar.zst`,
  ].join("\n") + "\n",
  [OLD]: `${SHA("9")}  cpython-3.12.8+${OLD}-x86_64-unknown-linux-gnu-install_only.tar.gz\n`,
  [LEGACY]: `${SHA("a")}  cpython-3.9.7-x86_64-unknown-linux-gnu-pgo+lto-${LEGACY}T1616.tar.zst\n` +
    `${SHA("b")}  cpython-3.9.7-x86_64-unknown-linux-gnu-debug-${LEGACY}T1616.tar.zst\n`,
};

function fakeGithub(releases: Release[], sums: Record<string, string>) {
  const requested: { url: string; headers: Headers }[] = [];
  const fetch = (url: string, init?: RequestInit) => {
    requested.push({ url, headers: new Headers(init?.headers) });
    const parsed = new URL(url);
    if (url.startsWith("https://api.github.com/")) {
      const page = Number(parsed.searchParams.get("page"));
      return Promise.resolve(Response.json(page === 1 ? releases : []));
    }
    const release = parsed.pathname.split("/").at(-2) ?? "";
    if (parsed.pathname.endsWith("/SHA256SUMS") && release in sums) {
      return Promise.resolve(new Response(sums[release]));
    }
    return Promise.resolve(new Response("not found", { status: 404 }));
  };
  return { fetch, requested };
}

Deno.test("--from-github keeps one archive per build, preferring stripped, install_only, then optimized full", async () => {
  const github = fakeGithub(RELEASES, SUMS);
  const downloads = await catalogFromGithub({ fetch: github.fetch, token: "t0ken" });
  const byKey = new Map(downloads.map((download) => [download.key, download]));
  assert.deepEqual([...byKey.keys()].sort(), [
    "cpython-3.12.8-linux-x86_64-gnu",
    "cpython-3.13.9+debug-linux-x86_64-gnu",
    "cpython-3.13.9+freethreaded+debug-linux-x86_64-gnu",
    "cpython-3.13.9+freethreaded-linux-x86_64-gnu",
    "cpython-3.13.9-linux-powerpc64le-gnu",
    "cpython-3.13.9-linux-x86_64-gnu",
    "cpython-3.13.9-linux-x86_64_v3-musl",
    "cpython-3.13.9-macos-aarch64-none",
    "cpython-3.13.9-windows-x86_64-none",
    "cpython-3.9.7+debug-linux-x86_64-gnu",
    "cpython-3.9.7-linux-x86_64-gnu",
  ]);
  const pick = (key: string) => byKey.get(key) as Download;
  const main = pick("cpython-3.13.9-linux-x86_64-gnu");
  assert.equal(main.flavour, "install_only_stripped");
  assert.equal(main.build, NEW, "the newest release wins a tie");
  assert.equal(main.sha256, SHA("1"));
  assert.equal(
    pick("cpython-3.13.9+freethreaded-linux-x86_64-gnu").flavour,
    "install_only_stripped",
  );
  assert.equal(pick("cpython-3.13.9+debug-linux-x86_64-gnu").sha256, SHA("2"));
  assert.match(pick("cpython-3.13.9-linux-x86_64_v3-musl").url, /-lto-full\.tar\.zst$/);
  assert.equal(pick("cpython-3.13.9-macos-aarch64-none").flavour, "install_only");
  assert.equal(pick("cpython-3.13.9-windows-x86_64-none").flavour, "install_only");
  assert.equal(pick("cpython-3.9.7-linux-x86_64-gnu").sha256, SHA("a"));
  assert.equal(pick("cpython-3.9.7-linux-x86_64-gnu").flavour, "full");
  const api = github.requested.filter((request) =>
    request.url.startsWith("https://api.github.com/")
  );
  assert.equal(api.length, 2, "stops at the first empty page");
  assert.equal(api[0].headers.get("authorization"), "Bearer t0ken");
  assert.equal(github.requested.filter((request) => request.url.endsWith("/SHA256SUMS")).length, 3);
});

Deno.test("--from-github output loads like the uv conversion", async () => {
  const downloads = await catalogFromGithub({ fetch: fakeGithub(RELEASES, SUMS).fetch });
  const loaded = parseCatalog(formatCompact(toCompact(downloads)), "github");
  assert.equal(loaded.downloads.length, downloads.length);
  assert.equal(
    resolve(loaded, parseRequest("3.13"), {
      os: "linux",
      arch: "x86_64",
      archVariant: "v3",
      libc: "musl",
    }).key,
    "cpython-3.13.9-linux-x86_64_v3-musl",
  );
});

Deno.test("--from-github refuses a digest that contradicts SHA256SUMS", async () => {
  const releases: Release[] = [{
    tag_name: NEW,
    assets: [
      asset(
        NEW,
        `cpython-3.13.9+${NEW}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz`,
        SHA("f"),
      ),
      asset(NEW, "SHA256SUMS"),
    ],
  }];
  await assert.rejects(
    catalogFromGithub({ fetch: fakeGithub(releases, SUMS).fetch }),
    /SHA256SUMS says 1{64}, GitHub says f{64}/,
  );
});

Deno.test("parseSha256Sums reads hex digests and file names, ignoring junk", () => {
  const sums = parseSha256Sums(`${SHA("A")}  a.tar.gz\n${SHA("b")} *b.tar.zst\n\nnot a line\n`);
  assert.deepEqual([...sums], [["a.tar.gz", SHA("a")], ["b.tar.zst", SHA("b")]]);
});

Deno.test("embeddedDigests gives each embedded download's sha256 by its URL's decoded file name", async () => {
  const { downloads } = await loadCatalog();
  const expected = new Map<string, string>();
  for (const { url, sha256 } of downloads) {
    const name = decodeURIComponent(new URL(url).pathname.split("/").at(-1)!);
    if (sha256 !== null && !expected.has(name)) expected.set(name, sha256);
  }
  const digests = embeddedDigests();
  assert.ok(digests.size > 1000, `${digests.size} names`);
  assert.deepEqual(digests, expected);
  assert.ok([...digests.keys()].some((name) => name.includes("+")), "%2B decoded");
});
