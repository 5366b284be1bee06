/**
 * Every command as a user types it, in the environments users have: a plain colour
 * terminal, CI with FORCE_COLOR/CLICOLOR_FORCE, NO_COLOR, TERM=dumb, and a
 * pseudo-terminal. Nothing here sanitises the environment: a variable read that the
 * permission set does not grant fails these tests.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { COMMANDS as ALL_COMMANDS, runCli, runOnPty, SHELL_MATRIX } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";

const COMMANDS = [...ALL_COMMANDS, "doctor"];
const ESC = "\x1b[";

function label(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ") || "a plain shell";
}

for (const extra of SHELL_MATRIX) {
  Deno.test(`every command's help, --version, list, dir and self-check work in ${label(extra)}`, async () => {
    const home = await Deno.makeTempDir({ prefix: "pyprime-shell-" });
    const env = { HOME: home, ...extra };
    try {
      for (const args of [["--help"], ["help"], ["-h"], ...COMMANDS.map((c) => [c, "--help"])]) {
        const r = await runCli(args, { env });
        assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
        assertMatch(r.stdout, /^Usage: pyprime /, args.join(" "));
        assertEquals(r.stderr, "", args.join(" "));
      }
      const bare = await runCli([], { env });
      assertEquals(bare.code, 2, bare.stderr);
      assertMatch(bare.stderr, /^Usage: pyprime /);

      const version = await runCli(["--version"], { env });
      assertEquals(version.code, 0, version.stderr);
      assertMatch(version.stdout, /^pyprime \d+\.\d+\.\d+ /);

      for (const args of [["list"], ["list", "--only-installed"], ["dir"], ["dir", "--bin"]]) {
        const r = await runCli(args, { env });
        assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
        assert(!r.stderr.includes("denied"), r.stderr);
      }

      // self-check warns that ~/.local/bin is not on PATH: coloured exactly when forced.
      const check = await runCli(["self-check"], { env });
      assertEquals(check.code, 0, check.stderr);
      assertMatch(check.stdout, /install dir/i);
      const forced = extra.FORCE_COLOR === "1" || extra.CLICOLOR_FORCE === "1";
      assertEquals(check.stderr.includes(ESC), forced, check.stderr);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
}

Deno.test("install, list and find of the fixture work under FORCE_COLOR and on a pseudo-terminal", async () => {
  const fx = await fixtures();
  const home = await Deno.makeTempDir({ prefix: "pyprime-shell-" });
  try {
    const env = { HOME: home, FORCE_COLOR: "1", CLICOLOR_FORCE: "1" };
    const dir = join(home, "pythons");
    const r = await runCli(["install", fx.gz, "--install-dir", dir, "--no-bin"], { env });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /\/bin\/python3\n$/);
    const listed = await runCli(["list", "--only-installed", "--install-dir", dir], { env });
    assertEquals(listed.code, 0, listed.stderr);
    assertMatch(listed.stdout, new RegExp(`^cpython-${fx.version.replaceAll(".", "\\.")}-`));

    const ptyDir = join(home, "pty");
    const tty = await runOnPty(["install", fx.zst, "--install-dir", ptyDir, "--no-bin"], {
      env: {
        HOME: home,
      },
    });
    assertEquals(tty.code, 0, tty.screen);
    assertMatch(tty.screen, /Installed cpython-/);
    for (const args of [["--help"], ["list", "--install-dir", ptyDir], ["self-check"]]) {
      const shown = await runOnPty(args, { env: { HOME: home } });
      assertEquals(shown.code, 0, `${args.join(" ")}: ${shown.screen}`);
      assert(!shown.screen.includes("denied"), shown.screen);
    }
    const found = await runOnPty(["find", fx.tag, "--install-dir", ptyDir], {
      env: { HOME: home },
    });
    assertEquals(found.code, 0, found.screen);
    assertMatch(found.screen, new RegExp(`${ptyDir}/cpython-`));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("--color always colours a pipe and --color never wins over FORCE_COLOR", async () => {
  const home = await Deno.makeTempDir({ prefix: "pyprime-shell-" });
  try {
    const missing = join(home, "missing.tar.gz");
    const always = await runCli(["--color", "always", "install", missing], { env: { HOME: home } });
    assertEquals(always.code, 1);
    assert(always.stderr.includes(`${ESC}31;1merror`), always.stderr);
    const never = await runCli(["--color", "never", "install", missing], {
      env: { HOME: home, FORCE_COLOR: "1", CLICOLOR_FORCE: "1" },
    });
    assertEquals(never.code, 1);
    assert(!never.stderr.includes(ESC), never.stderr);
    const bad = await runCli(["--color", "sometimes", "dir"], { env: { HOME: home } });
    assertEquals(bad.code, 2, bad.stderr);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
