/**
 * Asks an extracted interpreter what it is. The installation key is taken from the
 * interpreter itself, never trusted from the archive's file name.
 *
 * @module
 */
import { join } from "node:path";
import { ArchiveError, printable } from "../errors.ts";
import { OutputCapError, runBounded } from "../process.ts";
import { isInstallKey } from "./layout.ts";

/** How long the one-line probe may take: a healthy interpreter answers in ~30 ms. */
const PROBE_TIMEOUT_MS = 60_000;

/** The most the probe may print on stdout or stderr; its answer is a few hundred bytes. */
export const PROBE_OUTPUT_CAP = 1024 * 1024;

/** What an interpreter says about itself. */
export interface InterpreterInfo {
  /** `cpython` for PBS builds. */
  implementation: string;
  /** `3.12.1`, `3.14.0rc2`. */
  version: string;
  /** `3.12`. */
  minor: string;
  /** `freethreaded`, `debug`, `freethreaded+debug`, or "" for the default build. */
  variant: string;
  /** `linux`, `macos`, … (uv's names). */
  os: string;
  /** `x86_64`, `aarch64`, … (uv's names). */
  arch: string;
  /** `gnu`, `musl`, `none`, … (uv's names). */
  libc: string;
  /** `sysconfig.get_paths()["stdlib"]`, as seen from where the interpreter runs now. */
  stdlib: string;
  /** `sys.prefix`, as seen from where the interpreter runs now. */
  prefix: string;
  /** `sys.exec_prefix`. */
  exec_prefix: string;
  /** `sysconfig.get_paths()["platstdlib"]`. */
  platstdlib: string;
  /** `sysconfig.get_paths()["purelib"]`. */
  purelib: string;
  /** The uv-style key, e.g. `cpython-3.13.1+freethreaded-linux-x86_64-gnu`. */
  key: string;
  /** `importlib.util.MAGIC_NUMBER` as hex, when the interpreter said. */
  magic?: string;
  /** `sys.implementation.cache_tag` (`cpython-312`), when the interpreter said. */
  cache_tag?: string;
}

// Runs under -I -S -B with an empty environment; prints one JSON line. It imports only
// sysconfig (the issue asks for its stdlib path): the stdlib is not compiled yet when
// the probe runs, and json and platform (with re and enum behind them) doubled its
// time, 0.08 s -> 0.13 s on the 3.12 fixture. The encoder writes what json.dumps writes.
const PROBE = String.raw`
import os, sys, sysconfig
v = sys.version_info
pre = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(v.releaselevel, "")
version = "%d.%d.%d" % (v.major, v.minor, v.micro) + (pre + str(v.serial) if pre else "")
variant = []
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    variant.append("freethreaded")
if hasattr(sys, "gettotalrefcount"):
    variant.append("debug")
# What platform.machine() returns, without importing platform (POSIX has os.uname).
machine = (os.uname().machine if hasattr(os, "uname") else __import__("platform").machine()).lower()
arch = {"amd64": "x86_64", "arm64": "aarch64", "i686": "x86", "i386": "x86"}.get(machine, machine)
osname = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
libc = "none"
if sys.platform == "linux":
    multiarch = getattr(sys.implementation, "_multiarch", "") or ""
    libc = multiarch.rsplit("-", 1)[-1] if "-" in multiarch else ""
    if not libc:
        import platform
        libc = "gnu" if platform.libc_ver()[0] == "glibc" else "musl"


def quote(text):
    out = []
    for c in text:
        o = ord(c)
        if c in "\"\\":
            out.append("\\" + c)
        elif 0x20 <= o < 0x7F:
            out.append(c)
        elif o > 0xFFFF:
            o -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 | (o >> 10), 0xDC00 | (o & 0x3FF)))
        else:
            out.append("\\u%04x" % o)
    return '"' + "".join(out) + '"'


paths = sysconfig.get_paths()
# The bytecode a pack ships is checked against these (importlib's own frozen module).
ext = sys.modules.get("_frozen_importlib_external")
answer = {
    "implementation": sys.implementation.name,
    "version": version,
    "minor": "%d.%d" % (v.major, v.minor),
    "variant": "+".join(variant),
    "os": osname, "arch": arch, "libc": libc,
    "stdlib": paths["stdlib"],
    "prefix": sys.prefix,
    "exec_prefix": sys.exec_prefix,
    "platstdlib": paths["platstdlib"],
    "purelib": paths["purelib"],
    "magic": ext.MAGIC_NUMBER.hex() if ext is not None else "",
    "cache_tag": sys.implementation.cache_tag or "",
}
print("{" + ", ".join(quote(k) + ": " + quote(answer[k]) for k in answer) + "}")
`;

/**
 * Builds the uv-style key from the probe's answers.
 *
 * @example
 * ```ts
 * keyOf({ implementation: "cpython", version: "3.13.1", variant: "freethreaded",
 *   os: "linux", arch: "x86_64", libc: "gnu" }); // "cpython-3.13.1+freethreaded-linux-x86_64-gnu"
 * ```
 */
export function keyOf(
  info: Pick<InterpreterInfo, "implementation" | "version" | "variant" | "os" | "arch" | "libc">,
): string {
  const variant = info.variant ? `+${info.variant}` : "";
  return `${info.implementation}-${info.version}${variant}-${info.os}-${info.arch}-${info.libc}`;
}

/**
 * The environment every interpreter pyprime starts gets: nothing inherited, so
 * `PYTHONPATH`, `PYTHONDONTWRITEBYTECODE`, `LD_*` and friends of the caller cannot
 * change what the interpreter does.
 */
export function isolatedEnv(): Record<string, string> {
  return { LC_ALL: "C.UTF-8" };
}

/**
 * Runs `python -I -c <probe>` with a cleared environment and returns its answers.
 *
 * @example
 * ```ts
 * const info = await probeInterpreter("/tmp/staging/bin/python3", "cpython.tar.gz");
 * info.key; // "cpython-3.12.1-linux-x86_64-gnu"
 * ```
 */
export async function probeInterpreter(
  python: string,
  label: string,
  signal?: AbortSignal,
): Promise<InterpreterInfo> {
  // A hung interpreter must neither hang the install nor outlive a Ctrl-C; one that
  // floods its pipes or forks a child holding them must not either (see runBounded).
  const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  const stop = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let output;
  try {
    output = await runBounded(
      python,
      {
        // -B: the probe must not leave .pyc files in the tree (they would be stale after
        // the sysconfig rewrite and are the bytecode stage's job).
        args: ["-I", "-S", "-B", "-c", PROBE],
        clearEnv: true,
        env: isolatedEnv(),
        stdin: "null",
      },
      PROBE_OUTPUT_CAP,
      stop,
    );
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if (err instanceof OutputCapError) {
      throw new ArchiveError(
        `Cannot run the interpreter of ${label}: it printed more than ${
          PROBE_OUTPUT_CAP / 1024 / 1024
        } MiB and was killed`,
        { hint: "the archive's interpreter misbehaves; get the archive from a trusted source" },
      );
    }
    throw new ArchiveError(`Cannot run the interpreter of ${label}: ${(err as Error).message}`, {
      cause: err,
      hint: "the archive may be for another platform; check the platform part of its name",
    });
  }
  if (signal?.aborted) throw signal.reason;
  if (timeout.aborted) {
    throw new ArchiveError(
      `Cannot run the interpreter of ${label}: no answer within ${PROBE_TIMEOUT_MS / 1000}s`,
      { hint: "the archive's interpreter hangs; get the archive again from a trusted source" },
    );
  }
  const stderr = printable(
    new TextDecoder().decode(output.stderr).trim().split("\n").at(-1) ?? "",
  ).slice(0, 300);
  if (!output.status.success) {
    const how = output.status.signal
      ? `killed by ${output.status.signal}`
      : `exit ${output.status.code}`;
    throw new ArchiveError(
      `Cannot run the interpreter of ${label}: ${how}${stderr ? `: ${stderr}` : ""}`,
      { hint: "the archive may be for another platform or incomplete" },
    );
  }
  return parseProbe(new TextDecoder().decode(output.stdout), label);
}

/**
 * Checks the probe's answer. The key becomes a folder name under the install dir, so
 * an answer that does not make a well-formed key is refused rather than trusted.
 */
export function parseProbe(text: string, label: string): InterpreterInfo {
  const bad = (why: string) =>
    new ArchiveError(`Cannot install ${label}: its interpreter ${why}`, {
      hint: "this is not a python-build-standalone CPython; get the archive from a trusted source",
    });
  let info: Omit<InterpreterInfo, "key">;
  try {
    info = JSON.parse(text);
  } catch {
    throw bad("did not describe itself (no JSON answer)");
  }
  const fields = [
    "implementation",
    "version",
    "minor",
    "variant",
    "os",
    "arch",
    "libc",
    "stdlib",
    "prefix",
    "exec_prefix",
    "platstdlib",
    "purelib",
  ];
  if (
    typeof info !== "object" || info === null ||
    fields.some((f) => typeof (info as unknown as Record<string, unknown>)[f] !== "string")
  ) {
    throw bad("gave an incomplete description");
  }
  const key = keyOf(info);
  if (!isInstallKey(key)) throw bad(`named itself ${JSON.stringify(key)}, not a CPython key`);
  // Optional answers: anything but a string means "not said".
  const said = (v: unknown) => typeof v === "string" ? v : undefined;
  return { ...info, key, magic: said(info.magic), cache_tag: said(info.cache_tag) };
}

/** The probe answers that name folders the installation must own. */
const CONFINED = ["prefix", "exec_prefix", "stdlib", "platstdlib", "purelib"] as const;

/**
 * The real path of `path`, or, when it does not exist, the real path of its nearest
 * existing ancestor with the missing rest appended (a missing `site-packages` is fine).
 */
async function realPathLoose(path: string): Promise<string | undefined> {
  const parts = path.split("/");
  for (let keep = parts.length; keep > 0; keep--) {
    const head = parts.slice(0, keep).join("/") || "/";
    try {
      const real = await Deno.realPath(head);
      // The missing rest has no links to follow: `..` in it resolves lexically.
      return join(real, ...parts.slice(keep));
    } catch (err) {
      // A link loop or a file in the middle: a folder the installation cannot own.
      if (!(err instanceof Deno.errors.NotFound)) return undefined;
    }
  }
  return path;
}

/**
 * Checks that the folders the probe named (`prefix`, `exec_prefix`, `stdlib`,
 * `platstdlib`, `purelib`) lie inside `staging` once symbolic links are resolved, and
 * returns the answer with those real paths. A `pyvenv.cfg` or a missing landmark makes
 * CPython pick folders elsewhere (another Python, an ancestor of the install dir):
 * compiling or rewriting there would write outside the installation.
 *
 * @throws {ArchiveError} naming the value that lies outside.
 */
export async function confineProbe(
  info: InterpreterInfo,
  staging: string,
  label: string,
): Promise<InterpreterInfo> {
  const root = await Deno.realPath(staging);
  const out = { ...info };
  for (const field of CONFINED) {
    const value = info[field];
    const real = value.startsWith("/") ? await realPathLoose(value) : undefined;
    if (real === undefined || (real !== root && !real.startsWith(`${root}/`))) {
      throw new ArchiveError(
        `Cannot install ${label}: its interpreter's ${field} is ${
          JSON.stringify(printable(value))
        }, outside the installation`,
        {
          hint: "the archive makes CPython use another Python's files (a pyvenv.cfg, a " +
            "missing lib/python3.X/os.py); get it from a trusted source",
        },
      );
    }
    out[field] = real;
  }
  return out;
}
