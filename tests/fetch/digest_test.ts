import { assertEquals, assertMatch } from "../support/assert.ts";
import assertStrict from "node:assert/strict";
import { normalizeSha256, sha256Tap, verifySha256 } from "../../src/fetch/digest.ts";
import { ChecksumMismatchError, PyprimeError } from "../../src/errors.ts";

Deno.test("sha256Tap hashes every byte it forwards", async () => {
  const tap = sha256Tap();
  const body = new Blob(["ab", "c"]).stream().pipeThrough(tap.stream);
  assertEquals(await new Response(body).text(), "abc");
  assertEquals(
    await tap.digest,
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(tap.bytes(), 3);
});

Deno.test("verifySha256 names expected and actual digests when they differ", () => {
  verifySha256("a.tar.gz", undefined, "ff");
  verifySha256("a.tar.gz", "ff", "ff");
  assertStrict.throws(() => verifySha256("a.tar.gz", "00", "ff"), (err) => {
    assertStrict.ok(err instanceof ChecksumMismatchError);
    assertEquals([err.expected, err.actual], ["00", "ff"]);
    assertMatch(err.message, /a\.tar\.gz: expected sha256 00, got ff/);
    return true;
  });
});

Deno.test("normalizeSha256 accepts upper case and a sha256: prefix, rejects other text", () => {
  const hex = "AB".repeat(32);
  assertEquals(normalizeSha256(`sha256:${hex}`), hex.toLowerCase());
  assertStrict.throws(() => normalizeSha256("abc"), PyprimeError);
});
