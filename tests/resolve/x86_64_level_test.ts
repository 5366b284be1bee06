import { assertEquals } from "../support/assert.ts";
import { throws } from "node:assert/strict";
import { PlatformError } from "../../src/resolve/platform.ts";
import { withX86_64Level, x86_64LevelSetting } from "../../src/resolve/x86_64_level.ts";
import { withEnv } from "../support/helpers.ts";
import { runCli } from "../support/cli.ts";

const V4 = { os: "linux", arch: "x86_64", archVariant: "v4", libc: "gnu" };

Deno.test("x86_64LevelSetting is the baseline unless the flag or PYPRIME_X86_64_LEVEL says otherwise", () => {
  withEnv(["PYPRIME_X86_64_LEVEL"], () => {
    Deno.env.delete("PYPRIME_X86_64_LEVEL");
    assertEquals(x86_64LevelSetting(), 1);
    assertEquals(x86_64LevelSetting("auto"), "auto");
    assertEquals(x86_64LevelSetting("v3"), 3);
    Deno.env.set("PYPRIME_X86_64_LEVEL", "2");
    assertEquals(x86_64LevelSetting(), 2);
    assertEquals(x86_64LevelSetting("4"), 4);
    Deno.env.set("PYPRIME_X86_64_LEVEL", "fast");
    throws(() => x86_64LevelSetting(), (e) => e instanceof PlatformError && e.exitCode === 2);
    throws(() => x86_64LevelSetting("5"), /--x86-64-level/);
  });
});

Deno.test("withX86_64Level drops the host's level for 1, keeps it for auto, leaves aarch64 alone", () => {
  assertEquals(withX86_64Level(V4, 1), { os: "linux", arch: "x86_64", libc: "gnu" });
  assertEquals(withX86_64Level(V4, "auto"), V4);
  assertEquals(withX86_64Level(V4, 3).archVariant, "v3");
  const arm = { os: "linux", arch: "aarch64", libc: "gnu" };
  assertEquals(withX86_64Level(arm, 3), arm);
});

Deno.test("list shows baseline builds by default and the CPU's level with --x86-64-level auto", async () => {
  const base = await runCli(["list", "--only-available", "3.13"]);
  assertEquals(base.code, 0, base.stderr);
  const keys = base.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
  assertEquals(keys.filter((k) => /x86_64_v\d/.test(k)), []);
  const bad = await runCli(["list", "--x86-64-level", "9", "3.13"]);
  assertEquals(bad.code, 2);
  const self = await runCli(["self-check"], { env: { PYPRIME_X86_64_LEVEL: "auto" } });
  if (Deno.build.arch === "x86_64") {
    assertEquals(
      /^x86-64 level: host v[1-4], installs auto /m.test(self.stdout),
      true,
      self.stdout,
    );
  }
});
