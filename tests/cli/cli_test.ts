import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { join } from "node:path";
import { COMMANDS as ALL_COMMANDS, ROOT, runCli, runOnPty } from "../support/cli.ts";
import { sourcePython } from "../support/fixtures.ts";

const SNAPSHOT = join(ROOT, "tests", "cli", "snapshots", "help.txt");
const COMMANDS = ["", ...ALL_COMMANDS];

async function helpText(): Promise<string> {
  const parts: string[] = [];
  for (const command of COMMANDS) {
    const r = await runCli(command ? [command, "--help"] : ["--help"]);
    assertEquals(r.code, 0, r.stderr);
    parts.push(`$ pyprime ${command ? command + " " : ""}--help\n${r.stdout}`);
  }
  return parts.join("\n");
}

Deno.test("--help of every command matches the committed snapshot (UPDATE_SNAPSHOTS=1 rewrites it)", async () => {
  const text = await helpText();
  if (Deno.env.get("UPDATE_SNAPSHOTS") === "1") await Deno.writeTextFile(SNAPSHOT, text);
  assertEquals(text, await Deno.readTextFile(SNAPSHOT));
});

Deno.test("--version names pyprime, Deno and the target", async () => {
  const r = await runCli(["--version"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /^pyprime \d+\.\d+\.\d+ \(deno 2\.9\.6, [a-z0-9_]+-[a-z0-9_-]+\)\n$/);
});

Deno.test("an unknown command or option exits 2 with the error on stderr", async () => {
  const r = await runCli(["instal", "3.13"]);
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assertMatch(r.stderr, /unknown command 'instal'/);
  const bad = await runCli(["install", "x.tar.gz", "--optimize", "3"]);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /^error: --optimize takes 0, 1 and 2, not 3$/m);
});

Deno.test("errors are one line plus a hint, and --quiet keeps them while hiding logs", async () => {
  const home = await Deno.makeTempDir();
  const r = await runCli(["install", join(home, "missing.tar.gz"), "--install-dir", home, "-q"]);
  assertEquals(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 2, r.stderr);
  assertMatch(lines[0], /^error: Cannot read archive .*missing\.tar\.gz: no such file$/);
  assertMatch(lines[1], /^hint: /);
  assert(!r.stderr.includes("\x1b["), "NO_COLOR output has escape codes");
  await Deno.remove(home, { recursive: true });
});

Deno.test("compile of a tree under /dev says Deno refuses the path and to use another folder", async () => {
  // Deno keeps /dev, /proc and /sys for --allow-all; its own message names a flag that
  // a user of the binary cannot pass.
  const dir = await Deno.makeTempDir({ dir: "/dev/shm" });
  try {
    await Deno.writeTextFile(join(dir, "a.py"), "x = 1\n");
    for (const args of [["compile", dir], ["compile", dir, "--python", "python3"]]) {
      const r = await runCli(args);
      assertEquals(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assertMatch(lines[0], /^error: Deno does not let pyprime use \/dev\/shm\//);
      assertMatch(lines[1], /^hint: paths under \/dev, \/proc and \/sys are off limits/);
      assert(!r.stderr.includes("--allow-all"), r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("self-check --json reports install dir, bin dir, PATH, platform and catalog age", async () => {
  const home = await Deno.makeTempDir();
  const r = await runCli(["self-check", "--json"], {
    env: { HOME: home, PATH: `${home}/.local/bin:/usr/bin:/bin` },
  });
  assertEquals(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assertEquals(report.installDir, `${home}/.local/share/pyprime/python`);
  assertEquals(report.binDir, `${home}/.local/bin`);
  assertEquals(report.binDirOnPath, true);
  assertMatch(report.platform, /^linux-x86_64(_v[234])?-gnu$|^linux-aarch64-gnu$/);
  assert(report.catalog.downloads > 1000 && report.catalog.ageDays >= 0, r.stdout);
  await Deno.remove(home, { recursive: true });
});

Deno.test("compile draws a progress bar on a TTY and none when stderr is a pipe", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (let i = 0; i < 40; i++) {
      await Deno.writeTextFile(join(dir, `m${i}.py`), `def f${i}(x):\n    return x + ${i}\n`);
    }
    const python = sourcePython() ?? "python3";
    const args = ["compile", dir, "--python", python, "--jobs", "1"];
    // script(1) gives the CLI a pseudo-terminal; what it prints comes back on stdout.
    const tty = await runOnPty(args, { env: { TERM: "xterm" } });
    const screen = tty.screen;
    assertEquals(tty.code, 0, screen);
    assertMatch(screen, /Compiling bytecode \[[░█]+\] \d+\/40/);
    assertMatch(screen, /Bytecode compiled 40 files in /);

    await Deno.remove(join(dir, "__pycache__"), { recursive: true });
    const piped = await runCli(args);
    assertEquals(piped.code, 0, piped.stderr);
    assert(!piped.stderr.includes("Compiling bytecode"), piped.stderr);
    assertMatch(piped.stderr, /^Bytecode compiled 40 files in /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
