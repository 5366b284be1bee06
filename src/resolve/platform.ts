/**
 * The host platform in python-build-standalone terms (os, arch, libc and the
 * x86-64 micro-architecture level), detected from `Deno.build` and file reads
 * because the CLI runs without `--allow-sys`. Deno also refuses `/proc` reads
 * without `--allow-all`, so `/proc/cpuinfo` falls back to `cat` (`--allow-run`).
 *
 * Names follow uv's installation keys: `linux`, `macos`, `windows`; `x86_64`,
 * `aarch64`, …; `gnu`, `musl`, `none`, …
 *
 * @module
 */
import { PyprimeError, type PyprimeErrorOptions } from "../errors.ts";

/** A platform a CPython build runs on. */
export interface Platform {
  /** `linux`, `macos` or `windows`. */
  os: string;
  /** Architecture family: `x86_64`, `aarch64`, `armv7`, `i686`, … */
  arch: string;
  /**
   * The best x86-64 micro-architecture level the CPU supports (`v2`, `v3`, `v4`);
   * absent for the baseline (v1) and for other architectures.
   */
  archVariant?: string;
  /** `gnu`, `musl`, `gnueabihf`, … on Linux; `none` elsewhere. */
  libc: string;
}

/** An unknown or malformed platform, e.g. a bad `--platform` value. */
export class PlatformError extends PyprimeError {
  /** Creates the error; `message` names the value and the cause. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(message, options);
    this.name = "PlatformError";
  }
}

/**
 * The x86-64 psABI micro-architecture levels and the `/proc/cpuinfo` flags each
 * one adds on top of the previous level. `pni` is how Linux spells SSE3, `abm`
 * covers LZCNT and `lahf_lm` covers LAHF/SAHF in 64-bit mode.
 */
export const X86_64_LEVELS: readonly { level: string; flags: readonly string[] }[] = [
  { level: "v2", flags: ["cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"] },
  {
    level: "v3",
    flags: ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"],
  },
  { level: "v4", flags: ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"] },
];

const OS_ALIASES: Record<string, string> = {
  linux: "linux",
  macos: "macos",
  darwin: "macos",
  osx: "macos",
  windows: "windows",
  win: "windows",
};

const ARCH_ALIASES: Record<string, string> = {
  x86_64: "x86_64",
  amd64: "x86_64",
  x64: "x86_64",
  aarch64: "aarch64",
  arm64: "aarch64",
  armv7: "armv7",
  i686: "i686",
  x86: "i686",
  powerpc64le: "powerpc64le",
  ppc64le: "powerpc64le",
  powerpc64: "powerpc64",
  ppc64: "powerpc64",
  s390x: "s390x",
  riscv64: "riscv64",
  loongarch64: "loongarch64",
};

const LIBCS = new Set(["gnu", "musl", "none", "gnueabi", "gnueabihf"]);

/**
 * Normalizes an OS name to uv's spelling, or returns `undefined` when unknown.
 *
 * @example
 * ```ts
 * normalizeOs("darwin"); // "macos"
 * ```
 */
export function normalizeOs(name: string): string | undefined {
  return OS_ALIASES[name.toLowerCase()];
}

/**
 * Splits an architecture such as `x86_64_v3` or `arm64` into its normalized
 * family and level, or returns `undefined` when unknown.
 *
 * @example
 * ```ts
 * normalizeArch("x86_64_v3"); // { arch: "x86_64", archVariant: "v3" }
 * ```
 */
export function normalizeArch(name: string): { arch: string; archVariant?: string } | undefined {
  const match = /^(.*?)(?:_(v[1-4]))?$/.exec(name.toLowerCase());
  const arch = match ? ARCH_ALIASES[match[1]] : undefined;
  if (!match || arch === undefined) return undefined;
  const level = match[2];
  if (level !== undefined && arch !== "x86_64") return undefined;
  return level === undefined || level === "v1" ? { arch } : { arch, archVariant: level };
}

/** Returns true when `libc` is one PBS publishes builds for. */
export function isKnownLibc(libc: string): boolean {
  return LIBCS.has(libc);
}

/**
 * The numeric x86-64 level of an arch variant: 1 for none/`v1`, 2–4 for `v2`–`v4`.
 *
 * @example
 * ```ts
 * archLevel("v3"); // 3
 * archLevel(undefined); // 1
 * ```
 */
export function archLevel(archVariant: string | undefined | null): number {
  const match = archVariant ? /^v([1-4])$/.exec(archVariant) : null;
  return match ? Number(match[1]) : 1;
}

/**
 * Formats an architecture as it appears in keys: `x86_64_v3`, `aarch64`.
 *
 * @example
 * ```ts
 * formatArch("x86_64", "v2"); // "x86_64_v2"
 * ```
 */
export function formatArch(arch: string, archVariant?: string | null): string {
  return archVariant ? `${arch}_${archVariant}` : arch;
}

/**
 * Formats a platform as `os-arch-libc`, e.g. `linux-x86_64_v3-gnu`.
 *
 * @example
 * ```ts
 * formatPlatform({ os: "linux", arch: "aarch64", libc: "musl" }); // "linux-aarch64-musl"
 * ```
 */
export function formatPlatform(platform: Platform): string {
  return `${platform.os}-${formatArch(platform.arch, platform.archVariant)}-${platform.libc}`;
}

/**
 * The best x86-64 level whose flags (and those of every lower level) all appear
 * in the `flags` line of `/proc/cpuinfo`; `undefined` means the baseline.
 *
 * @example
 * ```ts
 * x86_64Level("flags : fpu sse2 cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3"); // "v2"
 * ```
 */
export function x86_64Level(cpuinfo: string): string | undefined {
  const line = cpuinfo.split("\n").find((text) => /^flags\s*:/.test(text));
  if (line === undefined) return undefined;
  const flags = new Set(line.slice(line.indexOf(":") + 1).trim().split(/\s+/));
  let best: string | undefined;
  for (const { level, flags: needed } of X86_64_LEVELS) {
    if (!needed.every((flag) => flags.has(flag))) break;
    best = level;
  }
  return best;
}

const PT_INTERP = 3;

/**
 * The program interpreter (`PT_INTERP`) named by an ELF file's first bytes, e.g.
 * `/lib/ld-musl-x86_64.so.1`; `undefined` for non-ELF, static or truncated input.
 *
 * @example
 * ```ts
 * elfInterpreter(await Deno.readFile("/bin/sh")); // "/lib64/ld-linux-x86-64.so.2"
 * ```
 */
export function elfInterpreter(bytes: Uint8Array): string | undefined {
  if (bytes.length < 52 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c) {
    return undefined;
  }
  if (bytes[3] !== 0x46) return undefined;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const word = (offset: number) =>
    is64 ? Number(view.getBigUint64(offset, little)) : view.getUint32(offset, little);
  try {
    const phoff = word(is64 ? 0x20 : 0x1c);
    const phentsize = view.getUint16(is64 ? 0x36 : 0x2a, little);
    const phnum = view.getUint16(is64 ? 0x38 : 0x2c, little);
    for (let index = 0; index < phnum; index++) {
      const header = phoff + index * phentsize;
      if (view.getUint32(header, little) !== PT_INTERP) continue;
      const offset = word(header + (is64 ? 0x08 : 0x04));
      const size = word(header + (is64 ? 0x20 : 0x10));
      if (offset + size > bytes.length) return undefined;
      const text = new TextDecoder().decode(bytes.subarray(offset, offset + size));
      return text.replace(/\0.*$/s, "");
    }
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
  return undefined;
}

/**
 * The libc an ELF interpreter path belongs to: `musl` for `ld-musl-*`, `gnu` for
 * glibc's `ld-linux*` / `ld64.so*`, `gnueabihf` for `ld-linux-armhf`; else `undefined`.
 *
 * @example
 * ```ts
 * libcFromInterpreter("/lib/ld-musl-aarch64.so.1"); // "musl"
 * ```
 */
export function libcFromInterpreter(interpreter: string): string | undefined {
  const name = interpreter.slice(interpreter.lastIndexOf("/") + 1);
  if (name.startsWith("ld-musl-")) return "musl";
  if (name.startsWith("ld-linux-armhf")) return "gnueabihf";
  if (name.startsWith("ld-linux") || name.startsWith("ld64.so") || name.startsWith("ld.so")) {
    return "gnu";
  }
  return undefined;
}

/** How `detectPlatform` looks at the host; every member is replaceable in tests. */
export interface HostProbe {
  /** `Deno.build.os`. */
  os: string;
  /** `Deno.build.arch`. */
  arch: string;
  /** Reads a text file, or `undefined` when it cannot be read. */
  readText(path: string): Promise<string | undefined>;
  /** Reads at most `size` leading bytes of a file, or `undefined` when it cannot be read. */
  readHead(path: string, size: number): Promise<Uint8Array | undefined>;
  /** Lists a directory's entry names; empty when it cannot be read. */
  listDir(path: string): Promise<string[]>;
}

async function readHead(path: string, size: number): Promise<Uint8Array | undefined> {
  try {
    using file = await Deno.open(path);
    const buffer = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const read = await file.read(buffer.subarray(filled));
      if (read === null) break;
      filled += read;
    }
    return buffer.subarray(0, filled);
  } catch {
    return undefined;
  }
}

/**
 * Reads a `/proc` file through `cat`. Deno refuses `/proc` and `/sys` reads unless
 * run with `--allow-all`, which pyprime is not; `--allow-run` is granted, though.
 */
async function readThroughCat(path: string): Promise<string | undefined> {
  for (const cat of ["/bin/cat", "/usr/bin/cat"]) {
    try {
      const { success, stdout } = await new Deno.Command(cat, {
        args: [path],
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      if (success) return new TextDecoder().decode(stdout);
    } catch {
      // Not there, or no run permission: try the next one, then give up.
    }
  }
  return undefined;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    const refused = error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied;
    return refused && path.startsWith("/proc/") ? await readThroughCat(path) : undefined;
  }
}

/** The real host: `Deno.build` plus plain file reads (`/proc` through `cat`). */
export const HOST_PROBE: HostProbe = {
  os: Deno.build.os,
  arch: Deno.build.arch,
  readText,
  readHead,
  listDir: async (path) => {
    try {
      return (await Array.fromAsync(Deno.readDir(path))).map((entry) => entry.name);
    } catch {
      return [];
    }
  },
};

// The interpreter string sits right after the program headers, well inside this.
const ELF_HEAD_BYTES = 16 * 1024;

/**
 * Detects the libc of a Linux host from the ELF interpreter of `/bin/sh` (or
 * `/usr/bin/env`), falling back to the presence of `/lib/ld-musl-*`; glibc when
 * nothing says otherwise.
 */
export async function detectLibc(probe: HostProbe = HOST_PROBE): Promise<string> {
  for (const path of ["/bin/sh", "/usr/bin/env"]) {
    const head = await probe.readHead(path, ELF_HEAD_BYTES);
    const interpreter = head && elfInterpreter(head);
    const libc = interpreter && libcFromInterpreter(interpreter);
    if (libc) return libc;
  }
  const lib = await probe.listDir("/lib");
  return lib.some((name) => name.startsWith("ld-musl-")) ? "musl" : "gnu";
}

/**
 * Detects the host platform: OS and arch from `Deno.build`, libc from the ELF
 * interpreter of `/bin/sh` on Linux, and the x86-64 level from `/proc/cpuinfo`.
 *
 * @example
 * ```ts
 * const platform = await detectPlatform();
 * formatPlatform(platform); // e.g. "linux-x86_64_v3-gnu"
 * ```
 */
export async function detectPlatform(probe: Partial<HostProbe> = {}): Promise<Platform> {
  const host: HostProbe = { ...HOST_PROBE, ...probe };
  const os = normalizeOs(host.os);
  const arch = normalizeArch(host.arch)?.arch;
  if (os === undefined || arch === undefined) {
    throw new PlatformError(`Unsupported platform ${host.os}-${host.arch}`, {
      hint: "python-build-standalone has builds for linux, macos and windows; " +
        "pass --platform OS-ARCH-LIBC to pick one",
    });
  }
  const libc = os === "linux" ? await detectLibc(host) : "none";
  const platform: Platform = { os, arch, libc };
  if (os === "linux" && arch === "x86_64") {
    const level = x86_64Level((await host.readText("/proc/cpuinfo")) ?? "");
    if (level !== undefined) platform.archVariant = level;
  }
  return platform;
}

/**
 * Parses a `--platform` value `OS-ARCH[-LIBC]` such as `linux-aarch64-musl` or
 * `linux-x86_64_v3-gnu`. LIBC defaults to `gnu` on Linux and `none` elsewhere; an
 * `x86_64` without a level means the baseline, so the build runs on any x86-64.
 *
 * @example
 * ```ts
 * parsePlatformOverride("macos-arm64"); // { os: "macos", arch: "aarch64", libc: "none" }
 * ```
 */
export function parsePlatformOverride(text: string): Platform {
  const parts = text.trim().toLowerCase().split("-");
  const fail = (cause: string) =>
    new PlatformError(`Invalid platform ${JSON.stringify(text)}: ${cause}`, {
      exitCode: 2,
      hint: "use OS-ARCH[-LIBC], e.g. linux-x86_64-gnu, linux-aarch64-musl, " +
        "linux-x86_64_v3-gnu, macos-aarch64, windows-x86_64",
    });
  if (parts.length < 2 || parts.length > 3) throw fail("expected OS-ARCH[-LIBC]");
  const os = normalizeOs(parts[0]);
  if (os === undefined) throw fail(`unknown OS ${JSON.stringify(parts[0])}`);
  const arch = normalizeArch(parts[1]);
  if (arch === undefined) throw fail(`unknown architecture ${JSON.stringify(parts[1])}`);
  const libc = parts[2] ?? (os === "linux" ? "gnu" : "none");
  if (!isKnownLibc(libc)) throw fail(`unknown libc ${JSON.stringify(libc)}`);
  if ((os === "linux") === (libc === "none")) {
    throw fail(os === "linux" ? "Linux needs a libc (gnu, musl, …)" : `${os} has no libc part`);
  }
  return { os, ...arch, libc };
}
