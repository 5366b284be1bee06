/**
 * `pyprime pack` end to end: the archive's shape, its reproducibility, the refusal of an
 * uncompiled installation, and no partial output on a signal.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { basename, join } from "node:path";
import { cliCommand, decodeOutput, mainArgs, runCli } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { names } from "../support/helpers.ts";

const fx = await fixtures();
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
const PACK = `cpython-${fx.version}+pyprime-${fx.triple}-install_only.tar.zst`;

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${d.decode(r.stderr)}`);
  return d.decode(r.stdout);
}

/** An install dir with the fixture installed (and compiled unless told). */
async function installed(...flags: string[]) {
  const home = await Deno.makeTempDir({ prefix: "pyprime-pack-" });
  const dir = join(home, "pythons");
  const r = await runCli(["install", fx.zst, "--install-dir", dir, "--no-bin", ...flags], {
    env: { HOME: home },
  });
  assertEquals(r.code, 0, r.stderr);
  return { home, dir, root: join(dir, KEY), env: { HOME: home } };
}

async function sha256(path: string): Promise<string> {
  return (await sh("sha256sum", [path])).slice(0, 64);
}

/** `tar -tv`-style listing in archive order: [type+mode, owner, size?, mtime, name]. */
async function listing(archive: string): Promise<string[]> {
  return (await sh("tar", ["--zstd", "--numeric-owner", "--full-time", "-tvf", archive]))
    .trim().split("\n");
}

Deno.test("pack writes a PBS install_only archive with the bytecode, its sha256 and SHA256SUMS", async () => {
  const { home, root, env } = await installed();
  const out = join(home, "packs");
  await Deno.mkdir(out);
  const r = await runCli(["pack", root], { env, cwd: out });
  assertEquals(r.code, 0, r.stderr);
  const archive = join(out, PACK);
  const digest = await sha256(archive);
  assertEquals(r.stdout, `${digest}  ${PACK}\n`);
  assertMatch(r.stderr, new RegExp(`^Packed ${KEY} into .*${PACK.replaceAll("+", "\\+")}`, "m"));
  assertEquals(await Deno.readTextFile(join(out, "SHA256SUMS")), `${digest}  ${PACK}\n`);
  await sh("sha256sum", ["-c", "SHA256SUMS"], out); // a folder of packs is a mirror

  // -o with a trailing slash names a folder, made when missing: the pack goes in it.
  const fresh = join(home, "new", "packs");
  const slash = await runCli(["pack", root, "-o", `${fresh}/`], { env });
  assertEquals(slash.code, 0, slash.stderr);
  assertEquals(await names(fresh), [".SHA256SUMS.lock", "SHA256SUMS", PACK]);
  assertEquals(await names(join(home, "new")), ["packs"]);

  const lines = await listing(archive);
  const paths = lines.map((l) => l.split(/\s+/).slice(5).join(" ").replace(/ -> .*$/, ""));
  assertEquals(paths[0], "python/");
  assert(paths.every((p) => p === "python/" || p.startsWith("python/")));
  assert(
    paths.includes(
      `python/lib/python${fx.tag}/json/__pycache__/decoder.cpython-${fx.tag.replace(".", "")}.pyc`,
    ),
  );
  assert(!paths.some((p) => p.endsWith("pyprime-bytecode.json")), "the record is not packed");
  // Depth first, folders before their contents, names in byte order.
  for (let i = 1; i < paths.length; i++) {
    const [a, b] = [paths[i - 1].replace(/\/$/, ""), paths[i].replace(/\/$/, "")];
    const parentA = a.slice(0, a.lastIndexOf("/"));
    if (b.startsWith(a + "/")) continue; // entering a folder
    assert(!a.startsWith(b + "/"), `${b} after its content ${a}`);
    if (b.slice(0, b.lastIndexOf("/")) === parentA) assert(a < b, `${a} before ${b}`);
  }
  for (const line of lines) assertMatch(line, /^\S+ 0\/0 /, line);

  // The build prefix is back: the packed sysconfig data names /install like the original.
  const x = join(home, "x");
  await Deno.mkdir(x);
  await sh("tar", ["--zstd", "-xf", archive, "-C", x]);
  const data = (await names(join(x, "python", "lib", `python${fx.tag}`)))
    .find((n) => n.startsWith("_sysconfigdata_"))!;
  const text = await Deno.readTextFile(join(x, "python", "lib", `python${fx.tag}`, data));
  assertMatch(text, /'prefix': '\/install'/);
  assert(!text.includes(root), "the install path is left in the packed sysconfig data");
  assert(
    !(await Deno.readTextFile(join(root, "lib", `python${fx.tag}`, data))).includes("'/install'"),
  );
  for (const pc of await names(join(x, "python", "lib", "pkgconfig"))) {
    const body = await Deno.readTextFile(join(x, "python", "lib", "pkgconfig", pc));
    assertMatch(body, /^prefix=\/install$/m, pc);
  }
  await Deno.remove(home, { recursive: true });
});

Deno.test("two packs of one installation, and of two installs at one path, are byte-identical", async () => {
  const { home, dir, root, env } = await installed();
  const a = join(home, "a.tar.zst"), b = join(home, "b.tar.zst"), c = join(home, "c.tar.zst");
  for (const out of [a, b]) {
    assertEquals((await runCli(["pack", root, "-o", out], { env })).code, 0);
  }
  assertEquals(await sha256(a), await sha256(b));
  // A second install of the same archive at the same path: new mtimes on every .pyc and
  // __pycache__, a new compile; the pack is the same bytes.
  await new Promise((done) => setTimeout(done, 1100));
  const again = await runCli(["install", fx.zst, "--install-dir", dir, "--no-bin", "--reinstall"], {
    env,
  });
  assertEquals(again.code, 0, again.stderr);
  assertEquals((await runCli(["pack", KEY, "--install-dir", dir, "-o", c], { env })).code, 0);
  assertEquals(await sha256(c), await sha256(a));
  // gzip too, and its header carries no name and no time.
  const g1 = join(home, "1.tar.gz"), g2 = join(home, "2.tar.gz");
  for (const out of [g1, g2]) {
    assertEquals((await runCli(["pack", root, "-o", out], { env })).code, 0);
  }
  assertEquals(await sha256(g1), await sha256(g2));
  const head = (await Deno.readFile(g1)).subarray(0, 10);
  assertEquals([...head.subarray(3, 8)], [0, 0, 0, 0, 0], "FLG and MTIME are zero");
  await Deno.remove(home, { recursive: true });
});

Deno.test("pack refuses an installation that is not fully compiled, with a hint to compile", async () => {
  const { home, root, env } = await installed("--no-compile-bytecode");
  const out = join(home, "p.tar.zst");
  const r = await runCli(["pack", root, "-o", out], { env });
  assertEquals(r.code, 1, r.stderr);
  assertMatch(r.stderr, /^error: Cannot pack .*: it was not bytecode-compiled/m);
  assertMatch(r.stderr, new RegExp(`^hint: run \`pyprime compile ${root}\` first$`, "m"));
  assertEquals(await names(home), ["pythons"], "no output file");

  const compiled = await runCli(["compile", root], { env });
  assertEquals(compiled.code, 0, compiled.stderr);
  assertEquals((await runCli(["pack", root, "-o", out], { env })).code, 0);

  // A source edited after the compile has a stale .pyc.
  const json = join(root, "lib", `python${fx.tag}`, "json", "encoder.py");
  await Deno.writeTextFile(json, "\n# edited\n", { append: true });
  await Deno.remove(out);
  const stale = await runCli(["pack", root, "-o", out], { env });
  assertEquals(stale.code, 1, stale.stderr);
  assertMatch(stale.stderr, /json\/encoder\.py has no current \.pyc for optimize level 0/);
  assert(!(await names(home)).some((n) => n.includes("p.tar.zst")), "an output file was left");
  await Deno.remove(home, { recursive: true });
});

Deno.test("a pack interrupted by SIGTERM or SIGINT leaves no file behind", async () => {
  const { home, root, env } = await installed();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const out = join(home, "out");
    await Deno.mkdir(out);
    // Level 19 is slow enough to be caught in the middle.
    const cmd = await cliCommand(["pack", root, "-o", join(out, "p.tar.zst"), "--level", "19"], {
      env,
    });
    const child = cmd.spawn();
    let seen = false;
    for (let i = 0; i < 600 && !seen; i++) {
      await new Promise((done) => setTimeout(done, 50));
      seen = (await names(out)).some((n) => n.includes(".tmp-"));
    }
    assert(seen, "the temporary file never appeared");
    await new Promise((done) => setTimeout(done, 300));
    child.kill(signal);
    const r = decodeOutput(await child.output());
    assertEquals(r.code, signal === "SIGINT" ? 130 : 143, `${signal}: ${r.stderr}`);
    assertMatch(r.stderr, new RegExp(`^error: Interrupted by ${signal}$`, "m"));
    assertEquals(await names(out), [], `${signal} left ${basename(out)} files`);
    await Deno.remove(out);
  }
  await Deno.remove(home, { recursive: true });
});

Deno.test("pack by version request writes to stdout with -o - and takes --format tar.gz", async () => {
  const { home, dir, env } = await installed();
  const r = await new Deno.Command("sh", {
    args: [
      "-c",
      `"$0" "$@" > ${home}/s.tar.zst`,
      Deno.execPath(),
      ...(await mainArgs()),
      "pack",
      fx.tag,
      "--install-dir",
      dir,
      "-o",
      "-",
    ],
    env: { ...env, PATH: Deno.env.get("PATH") ?? "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  assertMatch(new TextDecoder().decode(r.stderr), /^sha256 [0-9a-f]{64}$/m);
  const file = await runCli(["pack", fx.tag, "--install-dir", dir, "-o", join(home, "f.tar.zst")], {
    env,
  });
  assertEquals(await sha256(join(home, "s.tar.zst")), file.stdout.slice(0, 64));
  const gz = await runCli(["pack", KEY, "--install-dir", dir, "--format", "tar.gz"], {
    env,
    cwd: home,
  });
  assertEquals(gz.code, 0, gz.stderr);
  assert((await names(home)).includes(PACK.replace(/zst$/, "gz")));
  const bad = await runCli(["pack", KEY, "--install-dir", dir, "--level", "30"], {
    env,
    cwd: home,
  });
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /--level for tar\.zst takes 1 to 19, not 30/);
  await Deno.remove(home, { recursive: true });
});

Deno.test("pack's peak RSS stays under 150 MB", async () => {
  const { home, root, env } = await installed();
  // getrusage of the children: the largest process, Deno's (the check's workers are small).
  const wrapper = "import resource, subprocess, sys\nr = subprocess.run(sys.argv[1:])\n" +
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nsys.exit(r.returncode)";
  const argv = [Deno.execPath(), ...(await mainArgs())];
  const r = await new Deno.Command("python3", {
    args: ["-c", wrapper, ...argv, "pack", root, "-o", join(home, "p.tar.zst"), "-q"],
    env: { ...env, PATH: Deno.env.get("PATH") ?? "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  const kib = Number(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1));
  assert(kib > 0 && kib < 150 * 1024, `peak RSS ${Math.round(kib / 1024)} MiB`);
  await Deno.remove(home, { recursive: true });
});
