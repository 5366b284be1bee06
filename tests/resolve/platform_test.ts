import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { permissionFlags } from "../../scripts/permissions.ts";
import {
  archLevel,
  detectPlatform,
  elfInterpreter,
  formatPlatform,
  type HostProbe,
  libcFromInterpreter,
  normalizeOs,
  parsePlatformOverride,
  PlatformError,
  X86_64_LEVELS,
  x86_64Level,
} from "../../src/resolve/platform.ts";

const BASELINE =
  "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2 lm";

function flagsUpTo(level: number): string[] {
  return X86_64_LEVELS.slice(0, level - 1).flatMap((entry) => [...entry.flags]);
}

function cpuinfo(flags: string[]): string {
  return `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${BASELINE} ${
    flags.join(" ")
  }\nbogomips\t: 4000\n`;
}

/** A minimal ELF file with a PT_LOAD and, when given, a PT_INTERP naming `interp`. */
function elf(options: { bits?: 32 | 64; little?: boolean; interp?: string }): Uint8Array {
  const { bits = 64, little = true, interp } = options;
  const is64 = bits === 64;
  const headerSize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phnum = interp === undefined ? 1 : 2;
  const text = new TextEncoder().encode(`${interp ?? ""}\0`);
  const stringOffset = headerSize + phnum * phentsize;
  const bytes = new Uint8Array(stringOffset + text.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, little ? 1 : 2, 1]);
  const word = (offset: number, value: number) =>
    is64 ? view.setBigUint64(offset, BigInt(value), little) : view.setUint32(offset, value, little);
  word(is64 ? 0x20 : 0x1c, headerSize);
  view.setUint16(is64 ? 0x36 : 0x2a, phentsize, little);
  view.setUint16(is64 ? 0x38 : 0x2c, phnum, little);
  view.setUint32(headerSize, 1, little); // PT_LOAD
  if (interp !== undefined) {
    const header = headerSize + phentsize;
    view.setUint32(header, 3, little); // PT_INTERP
    word(header + (is64 ? 0x08 : 0x04), stringOffset);
    word(header + (is64 ? 0x20 : 0x10), text.length);
    bytes.set(text, stringOffset);
  }
  return bytes;
}

function probe(
  overrides: Partial<HostProbe> & { files?: Record<string, string | Uint8Array> },
): Partial<HostProbe> {
  const files = overrides.files ?? {};
  return {
    os: "linux",
    arch: "x86_64",
    readText: (path) =>
      Promise.resolve(typeof files[path] === "string" ? files[path] as string : undefined),
    readHead: (path, size) =>
      Promise.resolve(
        files[path] instanceof Uint8Array ? (files[path] as Uint8Array).slice(0, size) : undefined,
      ),
    listDir: (path) =>
      Promise.resolve(
        Object.keys(files).filter((name) => name.startsWith(`${path}/`)).map((name) =>
          name.slice(path.length + 1)
        ),
      ),
    ...overrides,
  };
}

Deno.test("x86_64Level picks the highest level whose flags and lower levels' flags are all present", () => {
  assert.equal(x86_64Level(cpuinfo([])), undefined);
  assert.equal(x86_64Level(cpuinfo(flagsUpTo(2))), "v2");
  assert.equal(x86_64Level(cpuinfo(flagsUpTo(3))), "v3");
  assert.equal(x86_64Level(cpuinfo(flagsUpTo(4))), "v4");
  const noMovbe = flagsUpTo(4).filter((flag) => flag !== "movbe");
  assert.equal(x86_64Level(cpuinfo(noMovbe)), "v2");
  const noPopcnt = flagsUpTo(3).filter((flag) => flag !== "popcnt");
  assert.equal(x86_64Level(cpuinfo(noPopcnt)), undefined);
  assert.equal(x86_64Level("processor : 0\n"), undefined);
  assert.equal(x86_64Level(""), undefined);
});

Deno.test("X86_64_LEVELS lists the psABI flags of v2, v3 and v4", () => {
  assert.deepEqual(X86_64_LEVELS.map((entry) => entry.level), ["v2", "v3", "v4"]);
  const all = flagsUpTo(4);
  for (
    const flag of [
      "sse4_2",
      "popcnt",
      "ssse3",
      "cx16",
      "avx2",
      "bmi1",
      "bmi2",
      "fma",
      "movbe",
      "avx512f",
      "avx512vl",
    ]
  ) {
    assert.ok(all.includes(flag), flag);
  }
});

Deno.test("elfInterpreter reads PT_INTERP from 64- and 32-bit, little- and big-endian ELF files", () => {
  assert.equal(
    elfInterpreter(elf({ interp: "/lib/ld-musl-x86_64.so.1" })),
    "/lib/ld-musl-x86_64.so.1",
  );
  assert.equal(
    elfInterpreter(elf({ bits: 32, interp: "/lib/ld-linux.so.2" })),
    "/lib/ld-linux.so.2",
  );
  assert.equal(
    elfInterpreter(elf({ little: false, interp: "/lib64/ld64.so.1" })),
    "/lib64/ld64.so.1",
  );
  assert.equal(elfInterpreter(elf({})), undefined);
  assert.equal(
    elfInterpreter(new TextEncoder().encode("#!/bin/sh\necho not an elf file at all, just text\n")),
    undefined,
  );
  const truncated = elf({ interp: "/lib/ld-musl-aarch64.so.1" }).slice(0, 150);
  assert.equal(elfInterpreter(truncated), undefined);
});

Deno.test("libcFromInterpreter maps loader names to gnu, musl and gnueabihf", () => {
  assert.equal(libcFromInterpreter("/lib/ld-musl-aarch64.so.1"), "musl");
  assert.equal(libcFromInterpreter("/lib64/ld-linux-x86-64.so.2"), "gnu");
  assert.equal(libcFromInterpreter("/lib/ld-linux-aarch64.so.1"), "gnu");
  assert.equal(libcFromInterpreter("/lib/ld-linux-armhf.so.3"), "gnueabihf");
  assert.equal(libcFromInterpreter("/usr/lib/something-else"), undefined);
});

Deno.test("detectPlatform finds musl from the ELF interpreter of /bin/sh", async () => {
  const platform = await detectPlatform(probe({
    arch: "aarch64",
    files: { "/bin/sh": elf({ interp: "/lib/ld-musl-aarch64.so.1" }) },
  }));
  assert.deepEqual(platform, { os: "linux", arch: "aarch64", libc: "musl" });
});

Deno.test("detectPlatform reads the x86-64 level from /proc/cpuinfo on glibc hosts", async () => {
  const platform = await detectPlatform(probe({
    files: {
      "/bin/sh": elf({ interp: "/lib64/ld-linux-x86-64.so.2" }),
      "/proc/cpuinfo": cpuinfo(flagsUpTo(3)),
    },
  }));
  assert.deepEqual(platform, { os: "linux", arch: "x86_64", archVariant: "v3", libc: "gnu" });
  assert.equal(formatPlatform(platform), "linux-x86_64_v3-gnu");
});

Deno.test("detectPlatform falls back to /lib/ld-musl-* when /bin/sh is static", async () => {
  const platform = await detectPlatform(probe({
    files: {
      "/bin/sh": elf({}),
      "/lib/ld-musl-x86_64.so.1": new Uint8Array(),
      "/proc/cpuinfo": cpuinfo([]),
    },
  }));
  assert.deepEqual(platform, { os: "linux", arch: "x86_64", libc: "musl" });
  const glibc = await detectPlatform(probe({ files: {} }));
  assert.equal(glibc.libc, "gnu");
});

Deno.test("detectPlatform names macOS and Windows as uv does, without libc or level", async () => {
  const mac = await detectPlatform(
    probe({ os: "darwin", arch: "aarch64", files: { "/proc/cpuinfo": cpuinfo(flagsUpTo(4)) } }),
  );
  assert.deepEqual(mac, { os: "macos", arch: "aarch64", libc: "none" });
  const windows = await detectPlatform(probe({ os: "windows", arch: "x86_64" }));
  assert.deepEqual(windows, { os: "windows", arch: "x86_64", libc: "none" });
  await assert.rejects(detectPlatform(probe({ os: "freebsd" })), PlatformError);
});

Deno.test("detectPlatform on this host returns a platform of Deno.build's OS", async () => {
  const platform = await detectPlatform();
  assert.equal(platform.os, normalizeOs(Deno.build.os));
  assert.match(formatPlatform(platform), /^[a-z]+-[a-z0-9_]+-[a-z]+$/);
});

Deno.test("detectPlatform under the pyprime task's permissions agrees with --allow-all", async () => {
  const probe = fileURLToPath(new URL("../support/data/platform_probe.ts", import.meta.url));
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...(await permissionFlags()), probe],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const errors = new TextDecoder().decode(stderr);
  assert.equal(code, 0, errors);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), await detectPlatform());
});

Deno.test("parsePlatformOverride reads OS-ARCH[-LIBC] with aliases and levels", () => {
  const table: [string, object][] = [
    ["linux-aarch64-musl", { os: "linux", arch: "aarch64", libc: "musl" }],
    ["linux-x86_64", { os: "linux", arch: "x86_64", libc: "gnu" }],
    ["linux-x86_64_v3-gnu", { os: "linux", arch: "x86_64", archVariant: "v3", libc: "gnu" }],
    ["linux-x86_64_v1-gnu", { os: "linux", arch: "x86_64", libc: "gnu" }],
    ["linux-armv7-gnueabihf", { os: "linux", arch: "armv7", libc: "gnueabihf" }],
    ["darwin-arm64", { os: "macos", arch: "aarch64", libc: "none" }],
    ["macos-x86_64-none", { os: "macos", arch: "x86_64", libc: "none" }],
    ["Windows-AMD64", { os: "windows", arch: "x86_64", libc: "none" }],
  ];
  for (const [text, expected] of table) {
    assert.deepEqual(parsePlatformOverride(text), expected, text);
  }
});

Deno.test("parsePlatformOverride rejects unknown parts with a hint", () => {
  for (
    const text of [
      "linux",
      "plan9-x86_64",
      "linux-sparc",
      "linux-x86_64-glibc",
      "linux-aarch64_v2",
      "macos-aarch64-gnu",
      "linux-x86_64-none",
      "a-b-c-d",
    ]
  ) {
    assert.throws(() => parsePlatformOverride(text), (error: unknown) => {
      assert.ok(error instanceof PlatformError, text);
      assert.match(error.message, new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
      assert.match(error.hint ?? "", /linux-aarch64-musl/);
      return true;
    });
  }
});

Deno.test("archLevel maps arch variants to numbers", () => {
  assert.deepEqual([undefined, null, "v1", "v2", "v3", "v4", "bogus"].map(archLevel), [
    1,
    1,
    1,
    2,
    3,
    4,
    1,
  ]);
});
