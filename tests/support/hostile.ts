/**
 * Hostile archives built on the real fixture: the fixture's entries are read once into
 * memory, a test edits the list (adds, replaces, drops entries, changes modes), and it
 * is packed again as a zstd archive. Apart from the attack, each one is a valid CPython.
 * Also the checks every hostile-archive test makes: nothing written outside the install
 * dir, no staging left, no process left, the previous installation intact.
 *
 * @module
 */
import zlib from "node:zlib";
import { dirname, join } from "node:path";
import { packTar, type TarHeader, unpackTar } from "modern-tar";
import { assert, assertEquals } from "./assert.ts";
import { cliCommand, type CliOptions, type CliResult, decodeOutput, runCli } from "./cli.ts";
import { fixtures } from "./fixtures.ts";
import { listTree } from "./helpers.ts";

/** One entry of an archive: a header and, for files, its bytes. */
export interface Entry {
  header: TarHeader;
  data?: Uint8Array;
}

const fx = await fixtures();

/** The fixture's key. */
export const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
/** `python3.12` for the 3.12 fixture. */
export const MINOR = `python${fx.version.split(".").slice(0, 2).join(".")}`;

let base: Promise<Entry[]> | undefined;

/** The fixture's entries (install_only layout), read once per test process. */
export function fixtureEntries(): Promise<Entry[]> {
  base ??= Deno.readFile(fx.gz).then(async (gz) => {
    const tar = zlib.gunzipSync(gz);
    return (await unpackTar(tar)).map((e) => ({ header: e.header, data: e.data }));
  });
  return base;
}

/** A regular-file entry. */
export function file(name: string, body: string | Uint8Array, mode = 0o644): Entry {
  const data = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return { header: { name, size: data.length, mode, type: "file", mtime: new Date(0) }, data };
}

/**
 * Packs the fixture's entries, edited by `edit`, as a zstd archive at `path`. `edit`
 * gets a copy of the list and returns the entries to pack.
 */
export async function craft(
  path: string,
  edit: (entries: Entry[]) => Entry[] | Promise<Entry[]>,
): Promise<string> {
  const entries = await edit((await fixtureEntries()).map((e) => ({ ...e })));
  const tar = await packTar(
    entries.map((e) => ({ header: e.header, body: e.data ?? undefined })),
  );
  const zst = zlib.zstdCompressSync(tar, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 },
  });
  await Deno.writeFile(path, zst);
  return path;
}

/** Replaces the entry named `name` (or adds it at the end). */
export function replace(entries: Entry[], entry: Entry): Entry[] {
  const out = entries.filter((e) => e.header.name.replace(/\/$/, "") !== entry.header.name);
  out.push(entry);
  return out;
}

/**
 * A `bin/python3` that runs `probe` (shell code) instead of answering when invoked as
 * the probe, `worker` instead of a bytecode worker, and the real interpreter otherwise.
 */
export function wrapper(options: { probe?: string; worker?: string }): Entry {
  const script = [
    "#!/bin/sh",
    'case "$*" in',
    ...(options.worker ? [`  *pyprime-compile-worker*) ${options.worker} ;;`] : []),
    ...(options.probe ? [`  *sysconfig.get_paths*) ${options.probe} ;;`] : []),
    "esac",
    `exec "$(dirname "$0")/${MINOR}" "$@"`,
    "",
  ].join("\n");
  return file("python/bin/python3", script, 0o755);
}

/** A test's world: a home with an install dir, a sentinel folder and a time marker. */
export interface World {
  /** The temporary home (HOME of the CLI runs). */
  home: string;
  /** The install dir, `<home>/pythons`. */
  dir: string;
  /** A folder beside the install dir that nothing may touch. */
  sentinel: string;
}

/** Creates a fresh world under `parent` (a temp dir by default). */
export async function world(parent?: string): Promise<World> {
  const home = parent ?? await Deno.makeTempDir({ prefix: "pyprime-hostile-" });
  const sentinel = join(home, "sentinel");
  await Deno.mkdir(sentinel, { recursive: true });
  await Deno.writeTextFile(join(sentinel, "keep.txt"), "untouched\n");
  return { home, dir: join(home, "pythons"), sentinel };
}

/** `pyprime install --install-dir <dir> --no-bin ARGS` in `w`. */
export function install(w: World, ...args: string[]): Promise<CliResult> {
  return runCli(["install", "--install-dir", w.dir, "--no-bin", ...args], {
    env: { HOME: w.home },
  });
}

/** Installs the plain fixture (without bytecode unless asked) and snapshots it. */
export async function previous(w: World, ...args: string[]): Promise<string[]> {
  const r = await install(w, fx.zst, ...(args.length ? args : ["--no-compile-bytecode"]));
  assertEquals(r.code, 0, r.stderr);
  return await snapshot(w);
}

/** Paths, sizes and modes of the installation of the fixture's key. */
export async function snapshot(w: World): Promise<string[]> {
  const root = join(w.dir, KEY);
  const out: string[] = [];
  for (const rel of await listTree(root)) {
    const info = await Deno.lstat(join(root, rel));
    out.push(`${rel} ${info.size} ${info.mode?.toString(8)}`);
  }
  return out;
}

/** A marker file whose mtime `writtenSince` compares against. */
export async function mark(w: World): Promise<string> {
  const marker = join(w.home, ".marker");
  await Deno.writeTextFile(marker, "");
  // Coarse-timestamp file systems: make every later write strictly newer.
  await new Promise((r) => setTimeout(r, 20));
  return marker;
}

/** Paths under `root` (or the world's home) changed since `marker`, the install dir excluded. */
export async function writtenSince(w: World, marker: string, root = w.home): Promise<string[]> {
  const out = await new Deno.Command("find", {
    args: [root, "-path", w.dir, "-prune", "-o", "-newer", marker, "-print"],
    stdout: "piped",
  }).output();
  // The folders holding the install dir change when it is created in them: their
  // other entries are listed all the same.
  const holders = new Set([w.home, dirname(w.dir)]);
  return new TextDecoder().decode(out.stdout).split("\n").filter((p) =>
    p && p !== marker && !holders.has(p)
  );
}

/** Pids of processes whose command line contains `needle`. */
export async function processesWith(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmd = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).replaceAll("\0", " ");
      const state = await Deno.readTextFile(`/proc/${e.name}/stat`);
      if (/^\d+ \(.*\) Z/.test(state)) continue; // a zombie is gone, only not reaped
      if (cmd.includes(needle)) pids.push(Number(e.name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * The checks after a refused install: exit 1 with one `error:` line matching
 * `pattern`, no staging folder, nothing written outside the install dir, no process
 * left whose command line has the world's home or `needle`, the previous
 * installation (when `before` is given) as it was.
 */
export async function assertRefused(
  w: World,
  r: CliResult,
  pattern: RegExp,
  marker: string,
  before?: string[],
  needle?: string,
): Promise<void> {
  assertEquals(r.code, 1, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assertEquals(errors.length, 1, r.stderr);
  assert(pattern.test(errors[0]), `${errors[0]} does not match ${pattern}\n${r.stderr}`);
  assert(!r.stderr.includes("Unexpected failure"), r.stderr);
  assertEquals(await listTree(join(w.dir, ".staging")), []);
  assertEquals(await writtenSince(w, marker), []);
  assertEquals(await processesWith(w.home), []);
  if (needle) assertEquals(await processesWith(needle), []);
  if (before) assertEquals(await snapshot(w), before);
}

/** A CLI run with its peak resident memory (VmHWM), polled from /proc. */
export async function runCliPeak(
  args: string[],
  options: CliOptions = {},
): Promise<CliResult & { peakMiB: number; seconds: number }> {
  const started = performance.now();
  const child = (await cliCommand(args, options)).spawn();
  let peak = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak = Math.max(peak, kb);
      } catch {
        // exited
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const output = await child.output();
  running = false;
  await poll;
  return {
    ...decodeOutput(output),
    peakMiB: peak / 1024,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * A ustar header written by hand, for what modern-tar's packer refuses to write: a
 * size in base-256 (any size, e.g. a declared 9 GiB with no body behind it).
 */
export function rawHeader(name: string, size: number, type = "0"): Uint8Array {
  const b = new Uint8Array(512);
  const enc = new TextEncoder();
  b.set(enc.encode(name).subarray(0, 100), 0);
  b.set(enc.encode("0000644\0"), 100);
  b.set(enc.encode("0000000\0"), 108);
  b.set(enc.encode("0000000\0"), 116);
  b[124] = 0x80;
  let v = BigInt(size);
  for (let i = 135; i > 124; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b.set(enc.encode("00000000000\0"), 136);
  b.set(enc.encode(type), 156);
  b.set(enc.encode("ustar\0"), 257);
  b.set(enc.encode("00"), 263);
  for (let i = 148; i < 156; i++) b[i] = 32;
  let sum = 0;
  for (const x of b) sum += x;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

let baseTar: Promise<Uint8Array> | undefined;

/** The fixture packed as a tar without its end-of-archive blocks, to append entries to. */
export function fixtureTarBody(): Promise<Uint8Array> {
  baseTar ??= fixtureEntries().then(async (entries) => {
    const tar = await packTar(entries.map((e) => ({ header: e.header, body: e.data })));
    return tar.subarray(0, tar.length - 1024);
  });
  return baseTar;
}

/** Writes the concatenation of `parts` (bytes, or a count of zero bytes) zstd-compressed. */
export async function writeZstd(path: string, parts: (Uint8Array | number)[]): Promise<void> {
  const z = zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } });
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const done = (async () => {
    for await (const chunk of z) await file.write(chunk as Uint8Array);
  })();
  const zeros = new Uint8Array(1024 * 1024);
  const write = (chunk: Uint8Array) =>
    new Promise<void>((resolve) => z.write(chunk) ? resolve() : z.once("drain", resolve));
  for (const part of parts) {
    if (typeof part !== "number") await write(part);
    else {
      for (let left = part; left > 0; left -= zeros.length) {
        await write(zeros.subarray(0, Math.min(left, zeros.length)));
      }
    }
  }
  z.end();
  await done;
  file.close();
}

/** Prints a measurement on the test's stderr (the numbers the issue asks to report). */
export function note(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`));
}
