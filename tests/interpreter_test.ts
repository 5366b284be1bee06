import { assertEquals } from "./assert.ts";
import assertStrict from "node:assert/strict";
import { ArchiveError } from "../src/errors.ts";
import { parseProbe } from "../src/interpreter.ts";

const good = {
  implementation: "cpython",
  version: "3.12.1",
  minor: "3.12",
  variant: "",
  os: "linux",
  arch: "x86_64",
  libc: "gnu",
  stdlib: "/s/lib/python3.12",
  prefix: "/s",
};

Deno.test("parseProbe builds the key from a well-formed answer", () => {
  assertEquals(parseProbe(JSON.stringify(good), "a.tar").key, "cpython-3.12.1-linux-x86_64-gnu");
});

Deno.test("parseProbe refuses answers that are not JSON, incomplete, or make a path", () => {
  const cases = [
    "Segmentation fault",
    JSON.stringify({ ...good, stdlib: 3 }),
    JSON.stringify({ ...good, implementation: "../../evil" }),
    JSON.stringify({ ...good, os: "linux/../x" }),
  ];
  for (const text of cases) {
    assertStrict.throws(() => parseProbe(text, "a.tar"), ArchiveError, text);
  }
});
