/**
 * Issue 10, process side: archives whose interpreter hangs, forks, floods its pipes,
 * and disks that fill up, installed through the CLI with the binary's permission set.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { join } from "node:path";
import {
  assertRefused,
  craft,
  type Entry,
  KEY,
  mark,
  MINOR,
  note,
  previous,
  processesWith,
  replace,
  runCliPeak,
  snapshot,
  world,
  wrapper,
  writtenSince,
} from "../support/hostile.ts";
import { cliCommand, decodeOutput, runCli } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { listTree } from "../support/helpers.ts";

const fx = await fixtures();

/** Kills leftovers a failing test would leave, so one failure does not hang the suite. */
async function killAll(needle: string): Promise<void> {
  for (const pid of await processesWith(needle)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Waits until `check` is true, polling; false after `ms`. */
async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Runs the CLI, SIGKILLing it after `ms` so a regression fails instead of hanging. */
async function runWithDeadline(args: string[], home: string, ms: number) {
  const child = (await cliCommand(args, { env: { HOME: home } })).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const started = performance.now();
  const r = decodeOutput(await child.output());
  clearTimeout(timer);
  return { ...r, seconds: (performance.now() - started) / 1000 };
}

Deno.test("--compile-timeout bounds a worker whose grandchild holds its pipes", async () => {
  const w = await world();
  const before = await previous(w);
  const path = await craft(
    join(w.home, "stall.tar.zst"),
    (e) => replace(e, wrapper({ worker: "sleep 4101.25 & exec sleep 4102.25" })),
  );
  const marker = await mark(w);
  try {
    const r = await runWithDeadline(
      [
        "install",
        "--install-dir",
        w.dir,
        "--no-bin",
        "--reinstall",
        "--compile-timeout",
        "2",
        path,
      ],
      w.home,
      60_000,
    );
    assert(r.signal === null, `pyprime hung and was killed after ${r.seconds}s`);
    await assertRefused(w, r, /timed out after 2s/, marker, before, "sleep 410");
    // Extraction and probe take a few seconds; the compile stage must end 2 s + 5 s later.
    assert(r.seconds < 20, `took ${r.seconds}s`);
  } finally {
    await killAll("sleep 410");
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("SIGTERM ends an install whose probe hangs with a grandchild holding its pipes", async () => {
  const w = await world();
  const before = await previous(w);
  const path = await craft(
    join(w.home, "hang.tar.zst"),
    (e) => replace(e, wrapper({ probe: "sleep 4201.25 & exec sleep 4202.25" })),
  );
  const marker = await mark(w);
  try {
    const child = (await cliCommand(
      ["install", "--install-dir", w.dir, "--no-bin", "--reinstall", path],
      { env: { HOME: w.home } },
    )).spawn();
    const output = child.output();
    assert(await until(async () => (await processesWith("sleep 4202.25")).length > 0, 30_000));
    child.kill("SIGTERM");
    const sent = performance.now();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const r = decodeOutput(await output);
    clearTimeout(timer);
    const seconds = (performance.now() - sent) / 1000;
    assertEquals(r.code, 143, r.stderr);
    assert(seconds < 5, `exit ${seconds}s after SIGTERM`);
    assertMatch(r.stderr, /Interrupted by SIGTERM/);
    assertEquals(await listTree(join(w.dir, ".staging")), []);
    assertEquals(await writtenSince(w, marker), []);
    assertEquals(await processesWith("sleep 420"), []);
    assertEquals(await snapshot(w), before);
  } finally {
    await killAll("sleep 420");
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install leaves no process behind when the probe answers, then forks", async () => {
  const w = await world();
  // The real probe answers, then a child keeps stdout open and sleeps.
  const probe = `"$(dirname "$0")/${MINOR}" "$@"; sleep 4301.25 & exit 0`;
  const path = await craft(join(w.home, "fork.tar.zst"), (e) => replace(e, wrapper({ probe })));
  try {
    const r = await runWithDeadline(
      ["install", "--install-dir", w.dir, "--no-bin", "--no-compile-bytecode", path],
      w.home,
      60_000,
    );
    assertEquals(r.code, 0, r.stderr);
    assert(r.seconds < 20, `took ${r.seconds}s`);
    assertEquals(await processesWith("sleep 4301.25"), []);
  } finally {
    await killAll("sleep 4301");
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install kills a probe that floods its stdout and stays small", async () => {
  const w = await world();
  const before = await previous(w);
  const path = await craft(
    join(w.home, "yes.tar.zst"),
    (e) => replace(e, wrapper({ probe: "exec yes pyprime-flood" })),
  );
  const marker = await mark(w);
  try {
    const r = await runCliPeak(
      ["install", "--install-dir", w.dir, "--no-bin", "--reinstall", path],
      { env: { HOME: w.home } },
    );
    await assertRefused(
      w,
      r,
      /printed more than 1 MiB and was killed/,
      marker,
      before,
      "pyprime-flood",
    );
    note(`peak RSS, flooding probe: ${r.peakMiB.toFixed(0)} MiB in ${r.seconds.toFixed(1)}s`);
    assert(r.peakMiB < 300, `peak RSS ${r.peakMiB} MiB`);
    assert(r.seconds < 30);
  } finally {
    await killAll("pyprime-flood");
  }
  await Deno.remove(w.home, { recursive: true });
});

/** Mounts a tmpfs of `size` at `dir`; the test fails (not skips) when it cannot. */
async function tmpfs(dir: string, size: string): Promise<() => Promise<void>> {
  await Deno.mkdir(dir, { recursive: true });
  const r = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "piped",
  }).output();
  assert(
    r.success,
    `cannot mount a tmpfs at ${dir} (this test needs root): ${new TextDecoder().decode(r.stderr)}`,
  );
  return async () => {
    await new Deno.Command("umount", { args: ["-l", dir] }).output();
  };
}

/** Free bytes of the file system holding `dir`. */
async function freeBytes(dir: string): Promise<number> {
  const out = await new Deno.Command("df", {
    args: ["-B1", "--output=avail", dir],
    stdout: "piped",
  })
    .output();
  return Number(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1));
}

/** Bytes of a tree, as `du -sb` counts them. */
async function treeBytes(dir: string): Promise<number> {
  const out = await new Deno.Command("du", { args: ["-sb", dir], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).split("\t")[0]);
}

let measured: Promise<number> | undefined;

/**
 * Room for the fixture's extraction and about a quarter of its bytecode: a disk of that
 * size fills up while compiling, whichever CPython the fixture was built from.
 */
function roomMidCompile(): Promise<number> {
  measured ??= (async () => {
    const w = await world();
    const plain = join(w.home, "plain"), compiled = join(w.home, "compiled");
    for (
      const [dir, flag] of [[plain, "--no-compile-bytecode"], [compiled, "--compile-bytecode"]]
    ) {
      const r = await runCli(["install", "--install-dir", dir, "--no-bin", flag, fx.zst], {
        env: { HOME: w.home },
      });
      assertEquals(r.code, 0, r.stderr);
    }
    const [without, withPyc] = [await treeBytes(plain), await treeBytes(compiled)];
    await Deno.remove(w.home, { recursive: true });
    return without + Math.floor((withPyc - without) / 4);
  })();
  return measured;
}

Deno.test("a full disk during bytecode compilation fails the install and leaves nothing", async () => {
  const w = await world();
  const unmount = await tmpfs(
    join(w.home, "small"),
    `${Math.ceil(await roomMidCompile() / 1048576)}m`,
  );
  try {
    const small = { ...w, dir: join(w.home, "small", "pythons") };
    const marker = await mark(w);
    const r = await runWithDeadline(
      ["install", "--install-dir", small.dir, "--no-bin", fx.zst],
      w.home,
      120_000,
    );
    await assertRefused(small, r, /No space left on device/, marker);
    const error = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"))[0];
    note(`full disk: ${error}`);
    // The message names where the file was going to live, not the staging folder.
    assertMatch(error, new RegExp(`Cannot write the bytecode of ${small.dir}/cpython-`));
    assertEquals((await listTree(small.dir)).filter((p) => !p.includes("/")), [
      ".lock",
      ".staging",
    ]);
  } finally {
    await unmount();
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("a full disk during a --reinstall's compilation keeps the previous installation", async () => {
  const w = await world();
  const unmount = await tmpfs(join(w.home, "disk"), "170m");
  try {
    const disk = { ...w, dir: join(w.home, "disk", "pythons") };
    const before = await previous(disk, "--compile-bytecode");
    assert(before.some((p) => p.includes("__pycache__")));
    // Room for the extraction and a few .pyc, not for all of them.
    const room = await roomMidCompile();
    const filler = join(w.home, "disk", "filler");
    const fill = (await freeBytes(filler.replace(/\/filler$/, ""))) - room;
    assert(fill > 0, "the tmpfs is too small for the previous installation");
    await Deno.writeFile(filler, new Uint8Array(fill));
    const marker = await mark(w);
    const r = await runWithDeadline(
      ["install", "--install-dir", disk.dir, "--no-bin", "--reinstall", fx.zst],
      w.home,
      120_000,
    );
    await Deno.remove(filler);
    await assertRefused(disk, r, /No space left on device/, marker, before);
    assert(!/Reinstalled/.test(r.stderr), r.stderr);
  } finally {
    await unmount();
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("the network is revoked before any interpreter from an archive runs", async () => {
  const w = await world();
  // The first archive's probe leaves a marker; the second source is still being read.
  const ran = join(w.home, "probe-ran");
  const probe = `touch '${ran}'`;
  const first = await craft(join(w.home, "first.tar.zst"), (e) => replace(e, wrapper({ probe })));
  const second = await Deno.readFile(fx.gz);
  const child = (await cliCommand(
    ["install", "--install-dir", w.dir, "--no-bin", "--no-compile-bytecode", "-v", first, "-"],
    { env: { HOME: w.home } },
    "piped",
  )).spawn();
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(second.subarray(0, 1024 * 1024));
  // The first archive is extracted (its interpreter is on disk) while stdin is open.
  const staged = await until(async () => {
    for (const name of await listTree(join(w.dir, ".staging"))) {
      if (name.endsWith(`/bin/${MINOR}`)) return true;
    }
    return false;
  }, 30_000);
  assert(staged, "the first archive was never extracted");
  await new Promise((r) => setTimeout(r, 3000));
  const early = await Deno.stat(ran).then(() => true, () => false);
  await writer.write(second.subarray(1024 * 1024));
  await writer.close();
  const r = decodeOutput(await output);
  assert(!early, "the probe ran while a source was still being read (before the revoke)");
  // Both sources are one key: the first installs, the second is a duplicate.
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stderr, /Revoked permissions: net/);
  assert((await Deno.stat(ran)).isFile, "the probe never ran");
  assert((await Deno.stat(join(w.dir, KEY))).isDirectory);
  await Deno.remove(w.home, { recursive: true });
});

/** Interpreters that lie or misbehave in ways the other tests do not cover. */
const MISBEHAVING: {
  what: string;
  probe?: string;
  worker?: string;
  extra?: Entry[];
  error: RegExp;
}[] = [
  {
    what: "names a stdlib through a symbolic link loop",
    probe: `out=$("$(dirname "$0")/${MINOR}" "$@"); d=$(cd "$(dirname "$0")/.." && pwd); ` +
      `printf '%s\\n' "$out" | sed "s#\\"stdlib\\": \\"[^\\"]*\\"#\\"stdlib\\": \\"$d/lib/loop/x\\"#"; exit 0`,
    extra: [{ header: { name: "python/lib/loop", type: "symlink", linkname: "loop", size: 0 } }],
    error: /interpreter's stdlib is ".*\/lib\/loop\/x", outside the installation/,
  },
  {
    what: "names a prefix that climbs out through a missing folder",
    // The real answer, with the prefix replaced by <staging>/nonexistent/../../..
    probe: `out=$("$(dirname "$0")/${MINOR}" "$@"); d=$(cd "$(dirname "$0")/.." && pwd); ` +
      `printf '%s\\n' "$out" | sed "s#\\"prefix\\": \\"[^\\"]*\\"#\\"prefix\\": \\"$d/nonexistent/../../..\\"#"; exit 0`,
    error: /interpreter's prefix is ".*nonexistent\/\.\.\/\.\.\/\.\.", outside the installation/,
  },
  {
    what: "floods its stderr",
    probe: "exec yes pyprime-flood >&2",
    error: /printed more than 1 MiB and was killed/,
  },
  {
    what: "has a worker that writes one endless line",
    worker: "exec cat /dev/zero",
    error: /wrote a reply line over 65536 bytes and was killed/,
  },
  {
    what: "has a worker that closes its stdout but keeps running",
    worker: "exec >&-; exec sleep 4501.25",
    error: /closed its stdout but kept running/,
  },
];

for (const c of MISBEHAVING) {
  Deno.test(`install refuses an interpreter that ${c.what}`, async () => {
    const w = await world();
    const before = await previous(w);
    const path = await craft(
      join(w.home, "bad.tar.zst"),
      (e) => [...replace(e, wrapper(c)), ...(c.extra ?? [])],
    );
    const marker = await mark(w);
    try {
      const r = await runCliPeak(
        ["install", "--install-dir", w.dir, "--no-bin", "--reinstall", path],
        { env: { HOME: w.home } },
      );
      await assertRefused(w, r, c.error, marker, before, "sleep 4501.25");
      assert(r.peakMiB < 300, `peak RSS ${r.peakMiB} MiB`);
      assert(r.seconds < 30, `took ${r.seconds}s`);
    } finally {
      await killAll("pyprime-flood");
      await killAll("sleep 4501");
    }
    await Deno.remove(w.home, { recursive: true });
  });
}

Deno.test("compile exits 1 when a file cannot be written, after compiling the others", async () => {
  const w = await world();
  await previous(w);
  const lib = join(w.dir, KEY, "lib", MINOR);
  // A __pycache__ that is not a real folder: an environment failure, not a source one.
  await Deno.symlink(w.sentinel, join(lib, "json", "__pycache__"));
  const marker = await mark(w);
  const r = await runCliPeak(["compile", join(lib, "json"), join(lib, "email")], {
    env: { HOME: w.home },
  });
  assertEquals(r.code, 1, r.stderr);
  assertMatch(
    r.stderr,
    /error: Cannot write the bytecode of \d+ files, e\.g\. .*json.*not a directory/,
  );
  assert((await listTree(join(lib, "email", "__pycache__"))).length > 10);
  assertEquals(await writtenSince(w, marker), []);
  await Deno.remove(w.home, { recursive: true });
});
