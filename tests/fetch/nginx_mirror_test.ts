/**
 * `pyprime install` against a web server people actually run: Debian's nginx, started
 * per test on a loopback port with a config the test writes (tests/support/nginx.ts),
 * serving a PBS-layout mirror with a SHA256SUMS per release folder. Plain HTTP, HTTPS
 * with an internal CA, range resume with nginx's own ETag and `If-Range`, a 404, a
 * directory listing where an archive was expected. Faults nginx cannot make (a cut
 * mid-body) come from a TCP relay in front of it; everything HTTP stays nginx's.
 *
 * @module
 */
import { join } from "node:path";
import { BUILD_DATE } from "../../scripts/build_fixtures.ts";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { startCutProxy } from "../support/cut_proxy.ts";
import { names } from "../support/helpers.ts";
import {
  ARCHIVE,
  ARCHIVE_URI,
  assertInstalled,
  assertOneError,
  fx,
  install,
  KEY,
  re,
  SHA,
  SIZE,
  withNginx,
  world,
} from "../support/mirror_world.ts";
import { makeCa } from "../support/tls.ts";

Deno.test("install TAG from an nginx mirror over plain HTTP, verified by the release's SHA256SUMS", async () => {
  const w = await world(null);
  await withNginx(w, async (nginx) => {
    const r = await install(w, [fx.tag, "--mirror", `${nginx.url}/`, "--cache-dir", w.cache]);
    assertEquals(r.code, 0, r.stderr);
    const [outcome] = JSON.parse(r.stdout);
    assertEquals([outcome.key, outcome.verified, outcome.sha256], [KEY, "sha256sums", SHA]);
    assertEquals(
      (await nginx.requests()).map((q) => [q.method, q.uri, q.status, q.range]),
      [
        ["GET", `/${BUILD_DATE}/SHA256SUMS`, 200, ""],
        ["GET", ARCHIVE_URI, 200, ""],
      ],
    );
    await assertInstalled(w);
    assertEquals(await names(w.cache), [ARCHIVE]);

    // A SHA256SUMS on the mirror that lists another digest refuses the archive.
    await Deno.writeTextFile(
      join(w.mirror, BUILD_DATE, "SHA256SUMS"),
      `${"d".repeat(64)}  ${ARCHIVE}\n`,
    );
    const bad = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"]);
    assertOneError(bad, /Checksum mismatch/, re(`expected sha256 ${"d".repeat(64)}, got ${SHA}`));
  });
  await w.remove();
});

Deno.test("install URL of an archive on nginx reads the SHA256SUMS beside it", async () => {
  const w = await world(null);
  await withNginx(w, async (nginx) => {
    const r = await install(w, [`${nginx.url}${ARCHIVE_URI}`, "--require-hashes"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout)[0].verified, "sha256sums");
    await assertInstalled(w);
  });
  await w.remove();
});

Deno.test("install from nginx: a 404 names the URL, a directory listing is not an archive", async () => {
  const w = await world();
  await Deno.remove(join(w.mirror, BUILD_DATE, ARCHIVE));
  await withNginx(w, async (nginx) => {
    const missing = await install(w, [fx.tag, "--mirror", nginx.url]);
    assertOneError(missing, re(`${nginx.url}${ARCHIVE_URI}`), /404 Not Found/);
    assertMatch(missing.stderr, /hint: check the version, the platform and the mirror URL/);

    const folder = `${nginx.url}/${BUILD_DATE}/`;
    const listing = await install(w, [folder]);
    assertOneError(listing, /not an archive but an HTML page/, re(folder));
    assertMatch(listing.stderr, /hint: give the URL of the \.tar\.gz or \.tar\.zst file itself/);
    const served = await nginx.requests();
    assert(served.some((q) => q.uri === `/${BUILD_DATE}/` && q.status === 200), "autoindex");
    assertEquals(await names(join(w.dir, ".staging")), []);
  });
  await w.remove();
});

Deno.test("install resumes a download cut midway with Range and nginx's ETag as If-Range", async () => {
  const w = await world();
  await withNginx(w, async (nginx) => {
    const relay = startCutProxy({ target: nginx.port, cutAfter: Math.floor(SIZE / 2) });
    try {
      const mirror = `http://127.0.0.1:${relay.port}`;
      const r = await install(w, [fx.tag, "--mirror", mirror, "--cache-dir", w.cache]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(relay.cuts(), 1);
      const gets = (await nginx.requests()).filter((q) => q.uri === ARCHIVE_URI);
      assertEquals(gets.length, 2, JSON.stringify(gets));
      const info = await Deno.stat(join(w.mirror, BUILD_DATE, ARCHIVE));
      // nginx's ETag: "<mtime hex>-<size hex>".
      const etag = `"${Math.floor(info.mtime!.getTime() / 1000).toString(16)}-${
        SIZE.toString(16)
      }"`;
      assertEquals([gets[0].status, gets[0].range], [200, ""]);
      assertEquals(gets[1].status, 206);
      const from = Number(/^bytes=(\d+)-$/.exec(gets[1].range)?.[1]);
      assert(from > 0 && from <= SIZE / 2, gets[1].range);
      assertEquals(gets[1].ifRange, etag);
      assertEquals(gets[1].bytes, SIZE - from);
      await assertInstalled(w);
      assertEquals((await Deno.stat(join(w.cache, ARCHIVE))).size, SIZE);
    } finally {
      await relay.close();
    }
  });
  await w.remove();
});

Deno.test("install starts over when the file changed on nginx between the cut and the resume", async () => {
  const w = await world();
  const path = join(w.mirror, BUILD_DATE, ARCHIVE);
  await withNginx(w, async (nginx) => {
    // A new mtime is a new ETag: nginx then ignores the Range and sends all of it.
    const onCut = () => Deno.utime(path, new Date(), new Date(Date.now() + 60_000));
    const relay = startCutProxy({ target: nginx.port, cutAfter: Math.floor(SIZE / 2), onCut });
    try {
      const r = await install(w, [fx.tag, "--mirror", `http://127.0.0.1:${relay.port}`]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stderr, /resuming got 200 OK instead of 206 .*; starting over/);
      const gets = (await nginx.requests()).filter((q) => q.uri === ARCHIVE_URI);
      assertEquals(gets.map((q) => [q.status, q.range !== "", q.ifRange !== ""]), [
        [200, false, false],
        [200, true, true],
        [200, false, false],
      ]);
      await assertInstalled(w);
    } finally {
      await relay.close();
    }
  });
  await w.remove();
});

Deno.test("install over HTTPS with an internal CA: refused untrusted, works with SSL_CERT_FILE or SSL_CERT_DIR", async () => {
  const w = await world(null);
  const ca = await makeCa(join(w.home, "ca"));
  await withNginx(w, async (nginx) => {
    assert(nginx.url.startsWith("https://"));
    const untrusted = await install(w, [fx.tag, "--mirror", nginx.url]);
    const line = assertOneError(untrusted, /certificate not trusted by this machine/);
    assertMatch(line, re(nginx.url));
    assertMatch(untrusted.stderr, /^hint: .*SSL_CERT_FILE=\/path\/to\/ca\.pem/m);
    assertEquals(untrusted.stderr.split("\n").filter((l) => l.startsWith("warning:")), []);
    assertEquals(await nginx.requests(), [], "no request got past the TLS handshake");

    const file = await install(w, [fx.tag, "--mirror", nginx.url], { SSL_CERT_FILE: ca.caCert });
    assertEquals(file.code, 0, file.stderr);
    assertEquals(JSON.parse(file.stdout)[0].verified, "sha256sums");
    await assertInstalled(w);

    // Deno's own variable works too (read by the runtime, not by pyprime).
    const deno = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"], {
      DENO_CERT: ca.caCert,
    });
    assertEquals(deno.code, 0, deno.stderr);

    const dir = join(w.home, "certs");
    await Deno.mkdir(dir);
    await Deno.copyFile(ca.caCert, join(dir, "internal-ca.pem"));
    await Deno.writeTextFile(join(dir, "README"), "not a certificate\n");
    const viaDir = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"], {
      SSL_CERT_DIR: dir,
    });
    assertEquals(viaDir.code, 0, viaDir.stderr);

    const bogus = join(w.home, "bogus.pem");
    await Deno.writeTextFile(bogus, "no certificate here\n");
    const bad = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"], {
      SSL_CERT_FILE: bogus,
    });
    assertOneError(
      bad,
      re(`error: Cannot use SSL_CERT_FILE=${bogus}: it holds no PEM certificate`),
    );
    assertEquals(bad.stderr.split("\n").filter((l) => l.startsWith("warning:")), []);
  }, { tls: { cert: ca.cert, key: ca.key } });
  await w.remove();
});
