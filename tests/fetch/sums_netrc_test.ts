/**
 * The small parsers behind verification and credentials: `SHA256SUMS`, `~/.netrc`,
 * and credentials split off a mirror URL.
 *
 * @module
 */
import { splitCredentials } from "../../src/fetch/client.ts";
import { basicAuth, parseNetrc } from "../../src/fetch/netrc.ts";
import { parseSha256Sums } from "../../src/fetch/sha256sums.ts";
import { assertEquals, assertMatch } from "../support/assert.ts";

const A = "a".repeat(64);
const B = "B".repeat(64);

Deno.test("parseSha256Sums reads text and binary lines, lowercases, and skips other lines", () => {
  const sums = parseSha256Sums(`# comment\n${A}  x.tar.gz\r\n${B} *y +z.tar.zst\nnot a line\n`);
  assertEquals([...sums], [["x.tar.gz", A], ["y +z.tar.zst", "b".repeat(64)]]);
});

Deno.test("parseSha256Sums refuses a name listed twice with different digests", () => {
  let message = "";
  try {
    parseSha256Sums(`${A}  x.tar.gz\n${B}  x.tar.gz\n`, "https://m/SHA256SUMS");
  } catch (error) {
    message = (error as Error).message;
  }
  assertMatch(message, /^Cannot use https:\/\/m\/SHA256SUMS: it lists x\.tar\.gz twice/);
  assertEquals(parseSha256Sums(`${A}  x.tar.gz\n${A}  x.tar.gz\n`).size, 1);
});

Deno.test("parseNetrc reads entries over several lines, quoted values, and skips macdef blocks", () => {
  const text = [
    "machine a.example login u1 password p1",
    "macdef init",
    "machine evil.example login no password no",
    "",
    "machine b.example",
    '  login "u 2"',
    "  password p2 account x",
    "default login d password dp",
  ].join("\n");
  assertEquals(parseNetrc(text), [
    { machine: "a.example", login: "u1", password: "p1" },
    { machine: "b.example", login: "u 2", password: "p2" },
    { login: "d", password: "dp" },
  ]);
});

Deno.test("splitCredentials takes user:token@ off a URL, percent-decoded, into Basic auth", () => {
  assertEquals(splitCredentials("https://ci%40corp:t%3Ak@m.example/pbs/"), {
    url: "https://m.example/pbs/",
    auth: basicAuth("ci@corp", "t:k"),
  });
  assertEquals(basicAuth("ci@corp", "t:k"), `Basic ${btoa("ci@corp:t:k")}`);
  assertEquals(splitCredentials("https://m.example/x"), { url: "https://m.example/x" });
});
