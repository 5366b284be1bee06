/**
 * Credentials and proxies against real servers: nginx with `auth_basic` (an htpasswd
 * line made by `openssl passwd -apr1`) for `--mirror https://user:token@host/…` and
 * `~/.netrc` / `NETRC`, and Debian's tinyproxy as the `HTTP_PROXY`/`HTTPS_PROXY`, its
 * log showing what went through it.
 *
 * @module
 */
import { join } from "node:path";
import { BUILD_DATE } from "../../scripts/build_fixtures.ts";
import { assert, assertEquals, assertMatch, assertNotMatch } from "../support/assert.ts";
import type { CliResult } from "../support/cli.ts";
import { listTree } from "../support/helpers.ts";
import { startNginx } from "../support/nginx.ts";
import {
  ARCHIVE_URI,
  assertInstalled,
  assertOneError,
  fx,
  install,
  re,
  SHA,
  withNginx,
  world,
} from "../support/mirror_world.ts";
import { startTinyproxy } from "../support/tinyproxy.ts";
import { htpasswdLine, makeCa } from "../support/tls.ts";

const USER = "ci-bot";
const TOKEN = "tok-9f3a7Q2secret";
const BASIC = btoa(`${USER}:${TOKEN}`);

/** The secret appears nowhere in what pyprime printed. */
function assertNoSecret(r: CliResult): void {
  for (const text of [r.stdout, r.stderr]) {
    assertNotMatch(text, re(TOKEN));
    assertNotMatch(text, re(BASIC));
  }
}

Deno.test("install from nginx with Basic auth: credentials in --mirror or in ~/.netrc / NETRC, never printed", async () => {
  const w = await world(null);
  const htpasswd = join(w.home, "htpasswd");
  await Deno.writeTextFile(htpasswd, await htpasswdLine(USER, TOKEN));
  await withNginx(w, async (nginx) => {
    const host = nginx.url.slice("http://".length);
    const none = await install(w, [fx.tag, "--mirror", nginx.url]);
    assertOneError(none, /401 Unauthorized/);
    assertMatch(none.stderr, /^hint: the server wants credentials: .*~\/\.netrc/m);

    const inUrl = await install(w, [
      fx.tag,
      "--mirror",
      `http://${USER}:${TOKEN}@${host}/`,
      "--cache-dir",
      w.cache,
      "--verbose",
    ]);
    assertEquals(inUrl.code, 0, inUrl.stderr);
    assertNoSecret(inUrl);
    assertEquals(JSON.parse(inUrl.stdout)[0].verified, "sha256sums");
    await assertInstalled(w);

    const wrong = await install(w, [
      fx.tag,
      "--mirror",
      `http://${USER}:nope-${TOKEN}@${host}`,
      "--reinstall",
      "--verbose",
    ]);
    assertOneError(wrong, /401 Unauthorized/);
    assertNoSecret(wrong);

    await Deno.writeTextFile(
      join(w.home, ".netrc"),
      `machine other.example login x password y\nmachine 127.0.0.1\n  login ${USER}\n  password ${TOKEN}\n`,
    );
    const netrc = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall", "--verbose"]);
    assertEquals(netrc.code, 0, netrc.stderr);
    assertNoSecret(netrc);

    const elsewhere = join(w.home, "ci-netrc");
    await Deno.rename(join(w.home, ".netrc"), elsewhere);
    const viaEnv = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"], {
      NETRC: elsewhere,
    });
    assertEquals(viaEnv.code, 0, viaEnv.stderr);

    // A URL source with credentials: --json reports it without them.
    const url = await install(w, [`http://${USER}:${TOKEN}@${host}${ARCHIVE_URI}`, "--reinstall"]);
    assertEquals(url.code, 0, url.stderr);
    assertNoSecret(url);
    assertEquals(JSON.parse(url.stdout)[0].source, `http://***@${host}${ARCHIVE_URI}`);

    const served = await nginx.requests();
    assertEquals(
      served.map((q) => [q.status, q.user]),
      [
        [401, ""], // no credentials: SHA256SUMS refused (so: not listed) …
        [401, ""], // … and the archive, the error
        [200, USER], // credentials in the mirror URL: SHA256SUMS
        [200, USER], // … and the archive
        [401, USER], // a wrong token
        [401, USER],
        [200, USER], // ~/.netrc
        [200, USER],
        [200, USER], // NETRC
        [200, USER],
        [200, USER], // a URL source
        [200, USER],
      ],
    );
    // Not in any file name of the cache or the install dir either.
    const files = [...await listTree(w.cache), ...await listTree(w.dir)];
    assert(files.length > 100 && !files.some((f) => f.includes(TOKEN)), "a file name has it");
  }, { htpasswd });
  await w.remove();
});

Deno.test("install drops the mirror's credentials on a redirect to another host, keeps them on its own", async () => {
  const w = await world();
  const htpasswd = join(w.home, "htpasswd");
  await Deno.writeTextFile(htpasswd, await htpasswdLine(USER, TOKEN));
  // Another host: `localhost` is not the mirror's 127.0.0.1, whatever it resolves to.
  const assets = await startNginx({ root: w.mirror });
  try {
    const assetsUrl = `http://localhost:${assets.port}`;
    const serverExtra = `location /moved/ { rewrite ^/moved/(.*)$ ${assetsUrl}/$1 redirect; }
    location /here/ { rewrite ^/here/(.*)$ /$1 redirect; }`;
    await withNginx(w, async (front) => {
      const host = front.url.slice("http://".length);
      const mirror = `http://${USER}:${TOKEN}@${host}`;
      const away = await install(w, [fx.tag, "--mirror", `${mirror}/moved`]);
      assertEquals(away.code, 0, away.stderr);
      assertNoSecret(away);
      // nginx's rewrite decodes the path: compare decoded paths.
      const path = decodeURIComponent(ARCHIVE_URI);
      assertEquals((await front.requests()).map((q) => [q.uri, q.status, q.auth !== ""]), [
        [`/moved${ARCHIVE_URI}`, 302, true],
      ]);
      assertEquals(
        (await assets.requests()).map((q) => [decodeURIComponent(q.uri), q.status, q.auth]),
        [[path, 200, ""]],
      );

      const near = await install(w, [fx.tag, "--mirror", `${mirror}/here`, "--reinstall"]);
      assertEquals(near.code, 0, near.stderr);
      assertEquals(
        (await front.requests()).slice(1).map((q) => [
          decodeURIComponent(q.uri),
          q.status,
          q.user,
        ]),
        [[`/here${path}`, 302, USER], [path, 200, USER]],
      );
      await assertInstalled(w);
    }, { htpasswd, serverExtra });
  } finally {
    await assets.stop();
  }
  await w.remove();
});

Deno.test("install goes through HTTP_PROXY / HTTPS_PROXY (tinyproxy's log shows it) and NO_PROXY bypasses it", async () => {
  const w = await world(null);
  const proxy = await startTinyproxy();
  try {
    await withNginx(w, async (nginx) => {
      const viaProxy = await install(w, [fx.tag, "--mirror", nginx.url], { HTTP_PROXY: proxy.url });
      assertEquals(viaProxy.code, 0, viaProxy.stderr);
      await assertInstalled(w);
      assertEquals(await proxy.requests(), [
        `GET ${nginx.url}/${BUILD_DATE}/SHA256SUMS HTTP/1.1`,
        `GET ${nginx.url}${ARCHIVE_URI} HTTP/1.1`,
      ]);
      assertEquals((await nginx.requests()).length, 2);

      const bypass = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"], {
        http_proxy: proxy.url,
        NO_PROXY: "example.invalid,127.0.0.1",
      });
      assertEquals(bypass.code, 0, bypass.stderr);
      assertEquals((await proxy.requests()).length, 2, "NO_PROXY did not bypass the proxy");
      assertEquals((await nginx.requests()).length, 4);
    });

    const ca = await makeCa(join(w.home, "ca"));
    await withNginx(w, async (nginx) => {
      const port = nginx.url.split(":").at(-1);
      const tls = await install(w, [fx.tag, "--mirror", nginx.url, "--reinstall"], {
        HTTPS_PROXY: proxy.url,
        SSL_CERT_FILE: ca.caCert,
      });
      assertEquals(tls.code, 0, tls.stderr);
      assertEquals(JSON.parse(tls.stdout)[0].sha256, SHA);
      // Deno itself may fetch npm metadata through the proxy when run from source.
      const connects = (await proxy.requests()).slice(2).filter((l) =>
        !l.startsWith("CONNECT registry.npmjs.org:")
      );
      assert(connects.length >= 1, "nothing went through the proxy");
      assert(connects.every((l) => l === `CONNECT 127.0.0.1:${port} HTTP/1.1`), connects.join());
    }, { tls: { cert: ca.cert, key: ca.key } });
  } finally {
    await proxy.stop();
  }
  await w.remove();
});
