import { assertEquals } from "../support/assert.ts";
import assertStrict from "node:assert/strict";
import { ArchiveError } from "../../src/errors.ts";
import { compareKeys, installDir, isInstallKey, pbsEntryPath } from "../../src/install/layout.ts";
import { keyOf } from "../../src/install/interpreter.ts";
import { withEnv } from "../support/helpers.ts";

Deno.test("pbsEntryPath strips python/ and python/install/, skips full-layout extras", () => {
  assertEquals(pbsEntryPath("python/bin/python3"), "bin/python3");
  assertEquals(pbsEntryPath("python/install/lib/os.py"), "lib/os.py");
  assertEquals(pbsEntryPath("python/PYTHON.json"), null);
  assertEquals(pbsEntryPath("python/build/Makefile"), null);
  assertEquals(pbsEntryPath("python/licenses/LICENSE"), null);
  assertEquals(pbsEntryPath("python"), null);
  assertStrict.throws(() => pbsEntryPath("etc/passwd", "x.tar"), ArchiveError);
});

Deno.test("keys are ordered by version with pre-releases before the final release", () => {
  const keys = [
    "cpython-3.13.0-linux-x86_64-gnu",
    "cpython-3.9.18-linux-x86_64-gnu",
    "cpython-3.13.0rc2-linux-x86_64-gnu",
    "cpython-3.12.10-linux-x86_64-gnu",
    "cpython-3.12.9-linux-x86_64-gnu",
  ];
  assertEquals(keys.sort(compareKeys), [
    "cpython-3.9.18-linux-x86_64-gnu",
    "cpython-3.12.9-linux-x86_64-gnu",
    "cpython-3.12.10-linux-x86_64-gnu",
    "cpython-3.13.0rc2-linux-x86_64-gnu",
    "cpython-3.13.0-linux-x86_64-gnu",
  ]);
  assertEquals(isInstallKey("cpython-3.13.1+freethreaded-linux-x86_64-gnu"), true);
  assertEquals(isInstallKey(".staging"), false);
});

Deno.test("keyOf builds uv-style keys with the variant after the version", () => {
  const base = { implementation: "cpython", os: "linux", arch: "aarch64", libc: "musl" };
  assertEquals(
    keyOf({ ...base, version: "3.13.1", variant: "" }),
    "cpython-3.13.1-linux-aarch64-musl",
  );
  assertEquals(
    keyOf({ ...base, version: "3.14.0rc2", variant: "freethreaded+debug" }),
    "cpython-3.14.0rc2+freethreaded+debug-linux-aarch64-musl",
  );
});

Deno.test("installDir follows --install-dir, then the env var, then XDG_DATA_HOME, then HOME", () => {
  withEnv(["PYPRIME_PYTHON_INSTALL_DIR", "XDG_DATA_HOME", "HOME"], () => {
    Deno.env.set("HOME", "/home/u");
    Deno.env.delete("XDG_DATA_HOME");
    Deno.env.delete("PYPRIME_PYTHON_INSTALL_DIR");
    assertEquals(installDir(), "/home/u/.local/share/pyprime/python");
    Deno.env.set("XDG_DATA_HOME", "/xdg");
    assertEquals(installDir(), "/xdg/pyprime/python");
    Deno.env.set("PYPRIME_PYTHON_INSTALL_DIR", "/env");
    assertEquals(installDir(), "/env");
    assertEquals(installDir("/flag"), "/flag");
  });
});
