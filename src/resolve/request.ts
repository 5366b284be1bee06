/**
 * Parses what the user asks for (`pyprime install 3.13`, `3.14.0rc2`, `3.13t`,
 * `>=3.12,<3.14`, `cpython-3.13.9-linux-aarch64-musl`, a file, `-`, a URL) the way
 * uv does, and builds and parses uv-style installation keys such as
 * `cpython-3.13.9+freethreaded-linux-x86_64-gnu`.
 *
 * @module
 */
import { redactUrl } from "../fetch/network_error.ts";
import { RequestError } from "./request_error.ts";
import { formatArch, isKnownLibc, normalizeArch, normalizeOs } from "./platform.ts";
import {
  formatVersion,
  parseSpecifiers,
  parseVersion,
  PRERELEASE,
  type PythonVersion,
  type Specifier,
  versionMatches,
} from "./version.ts";

/** The build variants python-build-standalone publishes; `null` is the default GIL build. */
export type Variant = null | "freethreaded" | "debug" | "freethreaded+debug";

/** The version part of a request: every specifier must hold. */
export interface VersionConstraint {
  /** Empty means any version. */
  specifiers: Specifier[];
  /** The requested build variant; `null` is the default build. */
  variant: Variant;
  /** True when the request names a pre-release, which allows pre-releases. */
  prereleases: boolean;
}

/** A version request: `3`, `3.13`, `3.13.9`, `3.14.0rc2`, `3.13t`, `>=3.12,<3.14`, … */
export interface VersionRequest extends VersionConstraint {
  /** Discriminant. */
  kind: "version";
  /** The request as the user typed it. */
  text: string;
}

/**
 * A key request such as `cpython-3.13.9-linux-aarch64-musl`: a version plus the
 * platform parts it names. Omitted parts fall back to the host platform; an
 * `x86_64` without a level means "the best level the CPU supports".
 */
export interface KeyRequest extends VersionConstraint {
  /** Discriminant. */
  kind: "key";
  /** The request as the user typed it. */
  text: string;
  /** `linux`, `macos`, `windows`. */
  os?: string;
  /** Architecture family. */
  arch?: string;
  /** x86-64 level (`v2`, `v3`, `v4`) when the key names one. */
  archVariant?: string;
  /** `gnu`, `musl`, `none`, … */
  libc?: string;
}

/** A local archive file. */
export interface FileRequest {
  /** Discriminant. */
  kind: "file";
  /** The path as given. */
  path: string;
}

/** An archive read from standard input (`-`). */
export interface StdinRequest {
  /** Discriminant. */
  kind: "stdin";
}

/** An archive at an `http://`, `https://` or `file://` URL. */
export interface UrlRequest {
  /** Discriminant. */
  kind: "url";
  /** The URL as given. */
  url: string;
}

/** Anything `pyprime install` accepts. */
export type PythonRequest = VersionRequest | KeyRequest | FileRequest | StdinRequest | UrlRequest;

/** The parts of an installation key. */
export interface KeyParts {
  /** The CPython version. */
  version: PythonVersion;
  /** The build variant. */
  variant: Variant;
  /** `linux`, `macos`, `windows`. */
  os: string;
  /** Architecture family. */
  arch: string;
  /** x86-64 level, absent for the baseline. */
  archVariant?: string;
  /** `gnu`, `musl`, `none`, … */
  libc: string;
}

const ARCHIVE_RE = /\.(tar\.gz|tar\.zst|tgz|tzst|tar)$/i;

function variantOf(flags: { freethreaded: boolean; debug: boolean }): Variant {
  if (flags.freethreaded && flags.debug) return "freethreaded+debug";
  if (flags.freethreaded) return "freethreaded";
  return flags.debug ? "debug" : null;
}

/**
 * Parses a variant suffix: `+freethreaded`, `+debug`, `+freethreaded+debug`, `+gil`
 * (the default build); `undefined` when malformed.
 */
function parseVariantSuffix(suffix: string, freethreaded: boolean): Variant | undefined {
  const flags = { freethreaded, debug: false, gil: false };
  for (const word of suffix.split("+").slice(1)) {
    if (word === "freethreaded" && !flags.freethreaded) flags.freethreaded = true;
    else if (word === "debug" && !flags.debug) flags.debug = true;
    else if (word === "gil" && !flags.gil) flags.gil = true;
    else return undefined;
  }
  if (flags.gil && flags.freethreaded) return undefined;
  return variantOf(flags);
}

const BARE_VERSION_RE = new RegExp(
  String.raw`^(\d+)(?:\.(\d+)(?:\.(\d+))?)?(${PRERELEASE})?(t)?((?:\+[a-z]+)*)$`,
);

/**
 * Parses a bare version with optional variant (`3`, `312`, `3.13`, `3.13.9`,
 * `3.14rc2`, `3.14.0rc2`, `3.13t`, `3.13+debug`) into a constraint, or
 * `undefined` when the text is not one.
 */
function parseBareVersion(text: string): VersionConstraint | undefined {
  const match = BARE_VERSION_RE.exec(text);
  if (!match) return undefined;
  let [, major, minor, patch] = match;
  const prerelease = match[4] ?? "";
  if (minor === undefined && major.length > 1) {
    // `312` is uv's shorthand for 3.12, as in `cp312`.
    [major, minor] = [major.slice(0, 1), major.slice(1)];
  }
  if (prerelease && minor === undefined) return undefined;
  const variant = parseVariantSuffix(match[6], match[5] === "t");
  if (variant === undefined) return undefined;
  const release = [major, minor, patch].filter((part) => part !== undefined).map(Number);
  const exact = patch !== undefined || prerelease !== "";
  const specifier: Specifier = exact
    ? { op: "==", release: [...release, 0].slice(0, 3), prerelease, wildcard: false }
    : { op: "==", release, prerelease: "", wildcard: true };
  return { specifiers: [specifier], variant, prereleases: prerelease !== "" };
}

/** Parses a version, a specifier set or `any` (as uv spells "any version") into a constraint. */
function parseVersionPart(text: string): VersionConstraint | undefined {
  if (text === "any") {
    return { specifiers: [], variant: null, prereleases: false };
  }
  if (/^[<>=!~]/.test(text)) {
    const specifiers = parseSpecifiers(text);
    return {
      specifiers,
      variant: null,
      prereleases: specifiers.some((specifier) => specifier.prerelease !== ""),
    };
  }
  return parseBareVersion(text);
}

const OTHER_IMPLEMENTATIONS = /^(pypy|pp|graalpy|gp)(?=$|[-@\d])/;
const IMPLEMENTATION_RE = /^(?:cpython|cp|python)(?:[@-](?=.)|(?=\d)|$)/;

/** Parses a key-shaped request `cpython-VERSION[-OS[-ARCH[-LIBC]]]`. */
function parseKeyRequest(text: string, original: string): KeyRequest | VersionRequest | undefined {
  const [versionPart, ...platformParts] = text.slice("cpython-".length).split("-");
  const constraint = parseVersionPart(versionPart);
  if (constraint === undefined) return undefined;
  if (platformParts.length === 0) return { kind: "version", text: original, ...constraint };
  if (platformParts.length > 3) return undefined;
  const [osName, archName, libc] = platformParts;
  const os = normalizeOs(osName);
  const arch = archName === undefined ? undefined : normalizeArch(archName);
  if (os === undefined || (archName !== undefined && arch === undefined)) return undefined;
  if (libc !== undefined && !isKnownLibc(libc)) return undefined;
  return {
    kind: "key",
    text: original,
    ...constraint,
    os,
    ...arch,
    ...(libc === undefined ? {} : { libc }),
  };
}

function parseVersionOrKey(
  text: string,
  original: string,
): VersionRequest | KeyRequest | undefined {
  if (OTHER_IMPLEMENTATIONS.test(text)) {
    throw new RequestError(
      `Cannot install ${JSON.stringify(original)}: pyprime installs CPython only`,
      {
        hint: "ask for a CPython version such as 3.13, or use uv for PyPy and GraalPy",
      },
    );
  }
  if (text.startsWith("cpython-")) return parseKeyRequest(text, original);
  const implementation = IMPLEMENTATION_RE.exec(text);
  const rest = implementation ? text.slice(implementation[0].length) : text;
  // A bare implementation name (`cpython`, `python`) means any version, as in uv.
  const constraint = implementation && rest === ""
    ? parseVersionPart("any")
    : parseVersionPart(rest);
  return constraint && { kind: "version", text: original, ...constraint };
}

/** Options for `parseRequest`. */
export interface ParseRequestOptions {
  /** Whether a path exists; lets a plain name like `python.tgz.part` count as a file. */
  exists?: (path: string) => boolean;
}

function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a request the way uv does. Order matters: URLs, `-`, anything that looks
 * like a path, then versions/specifiers/keys, and only then an existing path, so
 * that a stray file named `3.13` never shadows the version.
 *
 * @example
 * ```ts
 * parseRequest("3.13t"); // { kind: "version", variant: "freethreaded", … }
 * parseRequest("./cpython.tar.gz"); // { kind: "file", path: "./cpython.tar.gz" }
 * ```
 */
export function parseRequest(text: string, options: ParseRequestOptions = {}): PythonRequest {
  const trimmed = text.trim();
  if (trimmed === "-") return { kind: "stdin" };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)?.[1].toLowerCase();
  if (scheme === "http" || scheme === "https" || scheme === "file") {
    if (!URL.canParse(trimmed)) {
      throw new RequestError(
        `Invalid URL ${JSON.stringify(redactUrl(trimmed))}`,
        { hint: "check the URL: an http(s):// or file:// address of a .tar.gz or .tar.zst" },
      );
    }
    return { kind: "url", url: trimmed };
  }
  if (scheme !== undefined) {
    throw new RequestError(
      `Cannot install from ${JSON.stringify(text)}: unsupported URL scheme ${scheme}://`,
    );
  }
  if (trimmed.includes("/") || trimmed.includes("\\") || ARCHIVE_RE.test(trimmed)) {
    return { kind: "file", path: trimmed };
  }
  const parsed = trimmed === "" ? undefined : parseVersionOrKey(trimmed.toLowerCase(), text);
  if (parsed !== undefined) return parsed;
  if (trimmed !== "" && (options.exists ?? pathExists)(trimmed)) {
    return { kind: "file", path: trimmed };
  }
  throw new RequestError(`Invalid Python request ${JSON.stringify(text)}`);
}

/**
 * Builds a uv-style installation key, variant right after the version:
 * `cpython-3.13.9+freethreaded-linux-x86_64_v3-gnu`.
 *
 * @example
 * ```ts
 * installKey({ version: parseVersion("3.13.9")!, variant: null, os: "linux",
 *   arch: "aarch64", libc: "musl" }); // "cpython-3.13.9-linux-aarch64-musl"
 * ```
 */
export function installKey(parts: KeyParts): string {
  const variant = parts.variant ? `+${parts.variant}` : "";
  const arch = formatArch(parts.arch, parts.archVariant);
  return `cpython-${formatVersion(parts.version)}${variant}-${parts.os}-${arch}-${parts.libc}`;
}

/**
 * Parses a full installation key; accepts uv's `darwin` for `macos` and
 * `+freethreaded` / `t` variants. Throws `RequestError` when malformed.
 *
 * @example
 * ```ts
 * parseKey("cpython-3.13.9+freethreaded-linux-x86_64-gnu").variant; // "freethreaded"
 * ```
 */
export function parseKey(key: string): KeyParts {
  const fail = (cause: string) =>
    new RequestError(`Invalid installation key ${JSON.stringify(key)}: ${cause}`, {
      hint:
        "keys look like cpython-3.13.9-linux-x86_64-gnu or cpython-3.13.9+freethreaded-macos-aarch64-none",
    });
  const parts = key.toLowerCase().split("-");
  if (parts.length !== 5 || parts[0] !== "cpython") {
    throw fail("expected cpython-VERSION-OS-ARCH-LIBC");
  }
  const match = /^([^+t]+?)(t)?((?:\+[a-z]+)*)$/.exec(parts[1]);
  const version = match ? parseVersion(match[1]) : undefined;
  if (!match || version === undefined) throw fail(`bad version ${JSON.stringify(parts[1])}`);
  const variant = parseVariantSuffix(match[3], match[2] === "t");
  if (variant === undefined) throw fail(`bad variant in ${JSON.stringify(parts[1])}`);
  const os = normalizeOs(parts[2]);
  if (os === undefined) throw fail(`unknown OS ${JSON.stringify(parts[2])}`);
  const arch = normalizeArch(parts[3]);
  if (arch === undefined) throw fail(`unknown architecture ${JSON.stringify(parts[3])}`);
  if (!isKnownLibc(parts[4])) throw fail(`unknown libc ${JSON.stringify(parts[4])}`);
  return { version, variant, os, ...arch, libc: parts[4] };
}

/**
 * True when an installed key satisfies a request, for `list`, `find` and
 * `uninstall`. Pre-releases count (they were installed on purpose); the variant
 * must be the one asked for; key requests also compare the platform parts they name.
 *
 * @example
 * ```ts
 * matchesInstalled(parseRequest("3.13"), "cpython-3.13.9-linux-x86_64-gnu"); // true
 * ```
 */
export function matchesInstalled(request: PythonRequest, key: string): boolean {
  if (request.kind !== "version" && request.kind !== "key") return false;
  let parts: KeyParts;
  try {
    parts = parseKey(key);
  } catch {
    return false;
  }
  if (parts.variant !== request.variant) return false;
  if (!versionMatches(request, parts.version, { prereleases: true })) return false;
  if (request.kind === "version") return true;
  return (request.os === undefined || request.os === parts.os) &&
    (request.arch === undefined || request.arch === parts.arch) &&
    (request.archVariant === undefined || request.archVariant === parts.archVariant) &&
    (request.libc === undefined || request.libc === parts.libc);
}
