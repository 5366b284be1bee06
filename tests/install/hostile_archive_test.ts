/**
 * Issue 10, archive side: crafted archives on top of the real fixture, installed
 * through the CLI with the binary's permission set. Each test checks the refusal,
 * that nothing was written outside the install dir, that no staging folder or
 * process is left, and that the previous installation is intact.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { join } from "node:path";
import {
  assertRefused,
  craft,
  type Entry,
  file,
  fixtureEntries,
  fixtureTarBody,
  install,
  KEY,
  mark,
  MINOR,
  note,
  previous,
  rawHeader,
  replace,
  runCliPeak,
  snapshot,
  world,
  writeZstd,
  writtenSince,
} from "../support/hostile.ts";
import { fixtures } from "../support/fixtures.ts";
import { runCli } from "../support/cli.ts";

const fx = await fixtures();
const MiB = 1024 * 1024;

/** Writes the fixture's stdlib (`lib/python3.X`, .py files and extensions) under `root`. */
async function stdlibCopy(root: string): Promise<void> {
  for (const e of await fixtureEntries()) {
    const m = /^python\/(lib\/python[^/]+\/.*)$/.exec(e.header.name);
    if (!m) continue;
    const path = join(root, m[1]);
    if (e.header.type === "directory") await Deno.mkdir(path, { recursive: true });
    else if ((e.header.type ?? "file") === "file") {
      await Deno.mkdir(join(path, ".."), { recursive: true });
      await Deno.writeFile(path, e.data ?? new Uint8Array(), { mode: 0o644 });
    }
  }
}

Deno.test("install refuses a 9 GiB declared member at its header without any flag", async () => {
  const w = await world();
  const before = await previous(w);
  const path = join(w.home, "big.tar.zst");
  // A header promising 9 GiB, and only 1 MiB behind it: refused before a byte is read.
  await writeZstd(path, [
    await fixtureTarBody(),
    rawHeader("python/lib/big.bin", 9 * 1024 * MiB),
    MiB,
  ]);
  const marker = await mark(w);
  const r = await runCliPeak(
    ["install", "--install-dir", w.dir, "--no-bin", "--reinstall", path],
    { env: { HOME: w.home } },
  );
  await assertRefused(
    w,
    r,
    /big\.bin.*declares 9663676416 bytes.*--max-unpacked-size/,
    marker,
    before,
  );
  assertMatch(r.stderr, /hint: .*--max-unpacked-size/);
  assert(!r.stderr.includes("maxTotalBytes"), r.stderr);
  note(`peak RSS, 9 GiB declared member: ${r.peakMiB.toFixed(0)} MiB`);
  assert(r.peakMiB < 300, `peak RSS ${r.peakMiB} MiB`);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses more than 500,000 entries without any flag", async () => {
  const w = await world();
  const before = await previous(w);
  const path = join(w.home, "many.tar.zst");
  // Skipped entries (python/build/) count too, so nothing is written for them.
  const headers = new Uint8Array(600_001 * 512);
  const one = rawHeader("python/build/e", 0);
  for (let i = 0; i < 600_001; i++) headers.set(one, i * 512);
  await writeZstd(path, [await fixtureTarBody(), headers, 1024]);
  const marker = await mark(w);
  const r = await install(w, "--reinstall", path);
  await assertRefused(w, r, /more than 500000 entries \(--max-entries\)/, marker, before);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses an overlong path by the policy, not by mkdir", async () => {
  const w = await world();
  const before = await previous(w);
  const deep = await craft(join(w.home, "deep.tar.zst"), (entries) => [
    ...entries,
    file(`python/lib/${"a/".repeat(2100)}x.py`, "x = 1\n"),
  ]);
  const wide = await craft(join(w.home, "wide.tar.zst"), (entries) => [
    ...entries,
    file(`python/lib/${"b".repeat(300)}.py`, "x = 1\n"),
  ]);
  // Under the limit, but too long for the OS once under the install dir.
  const os = await craft(join(w.home, "os.tar.zst"), (entries) => [
    ...entries,
    file(`python/lib/${"c/".repeat(2020)}x.py`, "x = 1\n"),
  ]);
  const marker = await mark(w);
  const r0 = await install(w, "--reinstall", os);
  await assertRefused(
    w,
    r0,
    /too long for the file system .*\(--max-path-length\)/,
    marker,
    before,
  );
  assert(!/disk space/.test(r0.stderr), r0.stderr);
  const r = await install(w, "--reinstall", deep);
  await assertRefused(
    w,
    r,
    /path is 4\d{3} bytes long, over the limit of 4096 \(--max-path-length\)/,
    marker,
    before,
  );
  assert(!/File name too long|disk space/.test(r.stderr), r.stderr);
  const r2 = await install(w, "--reinstall", wide);
  await assertRefused(w, r2, /component of 303 bytes/, marker, before);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses gigabytes of zeros after the end of the archive", async () => {
  const w = await world();
  const before = await previous(w);
  const path = join(w.home, "trailing.tar.zst");
  await writeZstd(path, [await fixtureTarBody(), 1024 + 1024 * MiB]);
  assert((await Deno.stat(path)).size < 40 * MiB);
  const marker = await mark(w);
  const started = performance.now();
  const r = await install(w, "--reinstall", path);
  await assertRefused(w, r, /after the end of the archive \(--max-unpacked-size\)/, marker, before);
  assert(performance.now() - started < 30_000);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses a pyvenv.cfg that would make it compile another Python", async () => {
  const w = await world();
  // The other Python: a stdlib beside the install dir, under the sentinel's eyes.
  await stdlibCopy(w.sentinel);
  await Deno.mkdir(join(w.sentinel, "bin"));
  const before = await previous(w);
  const cfg = `home = ${w.sentinel}/bin\ninclude-system-site-packages = false\n`;
  const top = await craft(
    join(w.home, "venv.tar.zst"),
    (e) => [...e, file("python/pyvenv.cfg", cfg)],
  );
  const bin = await craft(
    join(w.home, "binvenv.tar.zst"),
    (e) => [...e, file("python/bin/pyvenv.cfg", cfg)],
  );
  const marker = await mark(w);
  for (const path of [top, bin]) {
    const r = await install(w, "--reinstall", path);
    await assertRefused(w, r, /pyvenv\.cfg.*another Python/, marker, before);
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses an interpreter whose stdlib is found above the install dir", async () => {
  const w = await world();
  // Without lib/python3.X/os.py CPython searches the parents of bin/: this one is found.
  await stdlibCopy(w.home);
  const before = await previous(w);
  const path = await craft(
    join(w.home, "nolandmark.tar.zst"),
    (e) => e.filter((x) => x.header.name !== `python/lib/${MINOR}/os.py`),
  );
  const marker = await mark(w);
  const r = await install(w, "--reinstall", path);
  await assertRefused(
    w,
    r,
    /interpreter's prefix is ".*", outside the installation/,
    marker,
    before,
  );
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install drops group and other write bits and special bits (PEP 706 data filter)", async () => {
  const w = await world();
  const path = await craft(join(w.home, "modes.tar.zst"), (entries) =>
    entries.map((e): Entry => {
      const name = e.header.name.replace(/\/$/, "");
      if (name === `python/lib/${MINOR}/os.py`) {
        return { ...e, header: { ...e.header, mode: 0o666 } };
      }
      if (name === `python/lib/${MINOR}`) return { ...e, header: { ...e.header, mode: 0o777 } };
      if (name === `python/lib/${MINOR}/json`) {
        return { ...e, header: { ...e.header, mode: 0o1777 } };
      }
      if (name === `python/lib/${MINOR}/abc.py`) {
        return { ...e, header: { ...e.header, mode: 0o6775 } };
      }
      if (name === `python/lib/${MINOR}/ast.py`) {
        return { ...e, header: { ...e.header, mode: 0o077 } };
      }
      return e;
    }));
  const marker = await mark(w);
  const r = await install(w, path, "--no-compile-bytecode");
  assertEquals(r.code, 0, r.stderr);
  const mode = async (rel: string) =>
    ((await Deno.stat(join(w.dir, KEY, "lib", MINOR, rel))).mode! & 0o7777).toString(8);
  assertEquals(await mode("os.py"), "644");
  assertEquals(await mode("."), "755");
  assertEquals(await mode("json"), "755");
  assertEquals(await mode("abc.py"), "755");
  assertEquals(await mode("ast.py"), "644");
  assertEquals(await writtenSince(w, marker), []);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install reads multi-frame zstd and skippable frames, and refuses garbage after them", async () => {
  const w = await world();
  const tar = new Uint8Array([...await fixtureTarBody(), ...new Uint8Array(1024)]);
  const zlib = (await import("node:zlib")).default;
  const z = (b: Uint8Array) => zlib.zstdCompressSync(b);
  const half = 30 * MiB;
  const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
  const two = join(w.home, "two.tar.zst");
  await Deno.writeFile(
    two,
    new Uint8Array([...z(tar.subarray(0, half)), ...z(tar.subarray(half))]),
  );
  const skip = join(w.home, "skip.tar.zst");
  await Deno.writeFile(
    skip,
    new Uint8Array([
      ...skippable,
      ...z(tar.subarray(0, half)),
      ...skippable,
      ...z(tar.subarray(half)),
      ...skippable,
    ]),
  );
  const r = await install(w, two, "--no-compile-bytecode");
  assertEquals(r.code, 0, r.stderr);
  const before = await snapshot(w);
  const r2 = await install(w, skip, "--no-compile-bytecode", "--reinstall");
  assertEquals(r2.code, 0, r2.stderr);
  assertEquals(await snapshot(w), before);
  const garbage = join(w.home, "garbage.tar.zst");
  await Deno.writeFile(
    garbage,
    new Uint8Array([...await Deno.readFile(two), ...new TextEncoder().encode("garbage\n")]),
  );
  const marker = await mark(w);
  const r3 = await install(w, garbage, "--no-compile-bytecode", "--reinstall");
  await assertRefused(
    w,
    r3,
    /garbage\.tar\.zst: unexpected bytes after the last zstd frame/,
    marker,
    before,
  );
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses a 100 MB _sysconfigdata quickly and in little memory", async () => {
  const w = await world();
  const before = await previous(w);
  const name = `python/lib/${MINOR}/_sysconfigdata__linux_x86_64-linux-gnu.py`;
  const big = `build_time_vars = {'BINDIR': '/install/bin', 'X': '/install/${
    "a".repeat(100 * 1000 * 1000)
  }'}\n`;
  const path = await craft(
    join(w.home, "bigsysconfig.tar.zst"),
    (e) => replace(e, file(name, big)),
  );
  const marker = await mark(w);
  const r = await runCliPeak(
    ["install", "--install-dir", w.dir, "--no-bin", "--reinstall", path],
    { env: { HOME: w.home } },
  );
  await assertRefused(w, r, /_sysconfigdata.*over the 16 MiB/, marker, before);
  note(`peak RSS, 100 MB sysconfig string: ${r.peakMiB.toFixed(0)} MiB`);
  assert(r.peakMiB < 300, `peak RSS ${r.peakMiB} MiB`);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install rewrites a 15 MiB _sysconfigdata string in linear time", async () => {
  const w = await world();
  const name = `python/lib/${MINOR}/_sysconfigdata__linux_x86_64-linux-gnu.py`;
  const original = new TextDecoder().decode(
    (await fixtureEntries()).find((e) => e.header.name === name)!.data,
  );
  // Half plain characters, half escapes: both paths of the string reader.
  const value = "/install/" + "b".repeat(7 * MiB) + "\\x41".repeat(2 * MiB);
  const text = original.replace(
    "build_time_vars = {",
    `build_time_vars = {'PYPRIME_BIG': '${value}',`,
  );
  const path = await craft(
    join(w.home, "sysconfig15.tar.zst"),
    (e) => replace(e, file(name, text)),
  );
  const r = await runCliPeak(
    ["install", "--install-dir", w.dir, "--no-bin", "--no-compile-bytecode", path],
    { env: { HOME: w.home } },
  );
  assertEquals(r.code, 0, r.stderr);
  const rewritten = await Deno.readTextFile(
    join(w.dir, KEY, "lib", MINOR, name.split("/").at(-1)!),
  );
  assert(rewritten.includes(`'${join(w.dir, KEY)}/bbbb`));
  note(`15 MiB sysconfig: ${r.seconds.toFixed(1)}s, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
  assert(r.peakMiB < 300, `peak RSS ${r.peakMiB} MiB`);
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("install refuses names with control characters and prints them escaped", async () => {
  const w = await world();
  const before = await previous(w);
  const names = ["evil\x1b[2J.py", "two\nlines.py", "cr\r.py", "del\x7f.py"];
  const paths: string[] = [];
  for (const [i, name] of names.entries()) {
    paths.push(
      await craft(
        join(w.home, `ctl${i}.tar.zst`),
        (e) => [...e, file(`python/lib/${MINOR}/${name}`, "x = 1\n")],
      ),
    );
  }
  const marker = await mark(w);
  for (const path of paths) {
    const r = await install(w, "--reinstall", "-v", path);
    await assertRefused(w, r, /contains a control character/, marker, before);
    // deno-lint-ignore no-control-regex
    assert(!/[\x1b\r\x7f]/.test(r.stderr), JSON.stringify(r.stderr));
    assert(!/two\nlines/.test(r.stderr), r.stderr);
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("a failed install names the dir when the existing install dir is read-only", async () => {
  const w = await world();
  const mnt = join(w.home, "ro");
  await Deno.mkdir(mnt);
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=200m", "tmpfs", mnt],
  }).output();
  assert(
    mount.success,
    `mount failed (the test needs root): ${new TextDecoder().decode(mount.stderr)}`,
  );
  try {
    const rw = { ...w, dir: join(mnt, "pythons") };
    const r = await install(rw, fx.zst, "--no-compile-bytecode");
    assertEquals(r.code, 0, r.stderr);
    const before = await snapshot(rw);
    const remount = await new Deno.Command("mount", { args: ["-o", "remount,ro", mnt] }).output();
    assert(remount.success);
    const again = await install(rw, fx.gz, "--no-compile-bytecode", "--reinstall");
    assertEquals(again.code, 1, again.stderr);
    assertMatch(
      again.stderr,
      new RegExp(`error: Cannot use ${rw.dir} as the install dir: .*Read-only`),
    );
    assert(!again.stderr.includes("Unexpected failure"), again.stderr);
    const un = await runCli(["uninstall", KEY, "--install-dir", rw.dir], { env: { HOME: w.home } });
    assertEquals(un.code, 1, un.stderr);
    assertMatch(un.stderr, /error: Cannot use .* as the install dir: .*Read-only/);
    assert(!un.stderr.includes("Unexpected failure"), un.stderr);
    assertEquals(await snapshot(rw), before);
  } finally {
    await new Deno.Command("umount", { args: ["-l", mnt] }).output();
  }
  await Deno.remove(w.home, { recursive: true });
});

Deno.test("find and list see an installation whose reinstall was killed between its renames", async () => {
  const w = await world();
  await previous(w);
  for (const command of [["find", KEY], ["list", "--only-installed"]]) {
    // What a kill after "move the old one aside" leaves: the key missing, the old tree aside.
    await Deno.rename(join(w.dir, KEY), join(w.dir, `.${KEY}.previous`));
    const r = await runCli([...command, "--install-dir", w.dir], { env: { HOME: w.home } });
    assertEquals(r.code, 0, r.stderr);
    // find prints the path through the minor-version link, list the patch's own.
    const folder = command[0] === "find" ? `cpython-${fx.tag}-linux-x86_64-gnu` : KEY;
    assertMatch(r.stdout, new RegExp(`${join(w.dir, folder, "bin", "python3")}`));
    assert((await Deno.stat(join(w.dir, KEY, "bin", "python3"))).isFile);
  }
  await Deno.remove(w.home, { recursive: true });
});
