/**
 * Progress bars as a terminal shows them: captured from a pseudo-terminal of a fixed
 * size (script(1) + stty), split into the frames cli-progress draws.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { runOnPty } from "../support/cli.ts";
import { fixtures, sourcePython } from "../support/fixtures.ts";

/** Runs pyprime on a `columns`-wide pseudo-terminal; returns the exit code and the frames. */
async function onTerminal(
  args: string[],
  columns: number,
  env: Record<string, string> = {},
  stdin?: string,
): Promise<{ code: number; frames: string[]; screen: string }> {
  const { code, screen } = await runOnPty(args, { env, columns, stdin });
  // Every cursor move or line clear starts a new frame.
  const esc = "\x1b";
  const moves = new RegExp(`${esc}\\[[0-9;?]*[A-Za-z]|${esc}[78]|\\r|\\n`);
  const frames = screen.split(moves).filter((f) => f.trim());
  return { code, frames, screen };
}

async function tree(files: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "pyprime-bar-" });
  for (let i = 0; i < files; i++) {
    await Deno.writeTextFile(join(dir, `m${i}.py`), `def f${i}(x):\n    return x + ${i}\n`);
  }
  return dir;
}

Deno.test("compile's bar fits 30-, 40- and 80-column terminals and starts as a count", async () => {
  const dir = await tree(200);
  try {
    for (const columns of [30, 40, 80]) {
      await Deno.remove(join(dir, "__pycache__"), { recursive: true }).catch(() => {});
      const python = sourcePython() ?? "python3";
      const r = await onTerminal(["compile", dir, "--python", python, "--jobs", "1"], columns);
      assertEquals(r.code, 0, r.screen);
      // The label is shortened on a narrow terminal ("Compiling bytec…").
      const bars = r.frames.filter((f) => f.startsWith("Compiling"));
      assert(bars.length > 0, r.screen);
      for (const frame of bars) {
        assert(frame.length < columns, `${frame.length} >= ${columns}: ${JSON.stringify(frame)}`);
      }
      // Before the walk has counted the files there is no total: no bar, no 100 %.
      assertMatch(bars[0], /^Compiling\S* ?\S* \d+$/);
      assert(bars.some((f) => / \d+\/200$/.test(f)), bars.join("\n"));
      // The bar itself where at least a few cells fit.
      if (columns >= 40) assert(bars.some((f) => /\[[░█]+\] \d+\/200/.test(f)), bars.join("\n"));
      assertMatch(r.screen, /Bytecode compiled 200 files/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install's bar fits 30 and 80 columns, never shows 100% of an unknown size, and --no-progress and TERM=dumb draw none", async () => {
  const fx = await fixtures();
  const home = await Deno.makeTempDir({ prefix: "pyprime-bar-" });
  try {
    const base = ["--install-dir", join(home, "p"), "--no-bin", "--no-compile-bytecode"];
    for (const columns of [30, 80]) {
      const file = await onTerminal(["install", fx.gz, ...base, "--reinstall"], columns, {
        HOME: home,
      });
      assertEquals(file.code, 0, file.screen);
      const installing = file.frames.filter((f) => /^Install(ing |…)/.test(f));
      assert(installing.length > 0, file.screen);
      for (const frame of installing) assert(frame.length <= columns, `${columns}: ${frame}`);
      assert(!installing[0].includes("100%"), installing[0]);
    }

    // Standard input has no size: a count of MiB, never a percentage.
    const stdin = await onTerminal(
      ["install", "-", ...base, "--reinstall"],
      80,
      { HOME: home },
      fx.gz,
    );
    assertEquals(stdin.code, 0, stdin.screen);
    const counted = stdin.frames.filter((f) => f.startsWith("Installing "));
    assert(counted.length > 0, stdin.screen);
    for (const frame of counted) assertMatch(frame, /^Installing standard input [\d.]+ MiB$/);

    for (
      const [args, env] of [
        [["--no-progress", "install", fx.gz, ...base, "--reinstall"], { HOME: home }],
        [["install", fx.gz, ...base, "--reinstall"], { HOME: home, TERM: "dumb" }],
      ] as const
    ) {
      const none = await onTerminal([...args], 80, { ...env });
      assertEquals(none.code, 0, none.screen);
      assert(!none.screen.includes("Installing "), none.screen);
      assertMatch(none.screen, /Reinstalled cpython-/);
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
