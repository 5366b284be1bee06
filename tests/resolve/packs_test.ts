/**
 * The packs a mirror's SHA256SUMS lists: `pyprime pack`'s names read back as downloads.
 */
import assert from "node:assert/strict";
import { packName } from "../../src/cli/pack.ts";
import { PACK_BUILD, packDownload, packsOf } from "../../src/resolve/packs.ts";

const HEX = "ab".repeat(32);
const BASE = "https://packs.internal/x86";

Deno.test("packDownload reads back every name pyprime pack writes", () => {
  const cases = [
    { version: "3.12.1", variant: "", os: "linux", arch: "x86_64", libc: "gnu" },
    { version: "3.14.0rc2", variant: "freethreaded", os: "linux", arch: "aarch64", libc: "musl" },
    {
      version: "3.13.9",
      variant: "freethreaded+debug",
      os: "macos",
      arch: "aarch64",
      libc: "none",
    },
    { version: "3.13.9", variant: "debug", os: "windows", arch: "x86_64", libc: "none" },
  ];
  for (const info of cases) {
    for (const format of ["tar.zst", "tar.gz"] as const) {
      const name = packName(info, format);
      const d = packDownload(name, HEX, BASE);
      assert.ok(d, name);
      const variant = info.variant ? `+${info.variant}` : "";
      assert.equal(d.key, `cpython-${info.version}${variant}-${info.os}-${info.arch}-${info.libc}`);
      assert.equal(d.url, `${BASE}/${encodeURIComponent(name)}`);
      assert.equal(d.sha256, HEX);
      assert.equal(d.build, PACK_BUILD);
      assert.equal(d.flavour, "install_only");
    }
  }
});

Deno.test("packsOf skips names that are not a pack's", () => {
  const sums = new Map([
    ["cpython-3.12.1+pyprime-x86_64-unknown-linux-gnu-install_only.tar.zst", HEX],
    ["cpython-3.12.1+20240107-x86_64-unknown-linux-gnu-install_only.tar.zst", HEX],
    ["cpython-3.12.1+pyprime-x86_64-unknown-linux-gnu-full.tar.zst", HEX],
    ["cpython-3.12.1+pyprime-sparc-unknown-linux-gnu-install_only.tar.zst", HEX],
    ["cpython-3.x+pyprime-x86_64-unknown-linux-gnu-install_only.tar.zst", HEX],
    ["../cpython-3.12.1+pyprime-x86_64-unknown-linux-gnu-install_only.tar.zst", HEX],
    ["notes.txt", HEX],
  ]);
  assert.deepEqual(packsOf(sums, BASE).map((d) => d.key), ["cpython-3.12.1-linux-x86_64-gnu"]);
});
