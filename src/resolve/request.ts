/**
 * Parses what the user asks for (`pyprime install 3.13`, `3.14.0rc2`, `3.13t`,
 * `>=3.12,<3.14`, `cpython-3.13.9-linux-aarch64-musl`, a file, `-`, a URL) the way
 * uv does, and builds and parses uv-style installation keys such as
 * `cpython-3.13.9+freethreaded-linux-x86_64-gnu`.
 *
 * @module
 */
import { PyprimeError, type PyprimeErrorOptions } from "../errors.ts";
import { formatArch, isKnownLibc, normalizeArch, normalizeOs } from "./platform.ts";

/** The build variants python-build-standalone publishes; `null` is the default GIL build. */
export type Variant = null | "freethreaded" | "debug" | "freethreaded+debug";

/** A CPython version; `prerelease` is `""` for a final release, else e.g. `a1`, `b3`, `rc2`. */
export interface PythonVersion {
  /** Major version, e.g. 3. */
  major: number;
  /** Minor version, e.g. 13. */
  minor: number;
  /** Patch (micro) version, e.g. 9. */
  patch: number;
  /** `""`, or `a`/`b`/`rc` followed by a number. */
  prerelease: string;
}

/** A PEP 440 comparison operator pyprime understands. */
export type Operator = "==" | "!=" | ">=" | "<=" | ">" | "<" | "~=";

/** One PEP 440 version specifier such as `>=3.12` or `==3.12.*`. */
export interface Specifier {
  /** The comparison. */
  op: Operator;
  /** The release numbers as written, e.g. `[3, 12]`. */
  release: number[];
  /** `""` or a pre-release tag such as `rc1`. */
  prerelease: string;
  /** True for a trailing `.*` (prefix match, only with `==`/`!=`). */
  wildcard: boolean;
}

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

/** The forms a request may take, for hints. */
export const ACCEPTED_FORMS = "use a version (3, 3.13, 3.13.9, 3.14.0rc2), a variant (3.13t, " +
  "3.13+freethreaded, 3.13+debug), specifiers (>=3.12,<3.14), a key " +
  "(cpython-3.13.9-linux-x86_64-gnu), an archive path (.tar.gz, .tar.zst), - for stdin, " +
  "or an http(s):// or file:// URL";

/** A request that cannot be parsed or matches nothing; `hint` says what would work. */
export class RequestError extends PyprimeError {
  /** Creates the error; the hint defaults to the accepted request forms. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(message, { hint: ACCEPTED_FORMS, ...options });
    this.name = "RequestError";
  }
}

const PRERELEASE = String.raw`(?:a|b|rc)\d+`;
const VERSION_RE = new RegExp(String.raw`^(\d+)\.(\d+)\.(\d+)(${PRERELEASE})?$`);
const ARCHIVE_RE = /\.(tar\.gz|tar\.zst|tgz|tzst|tar)$/i;

/**
 * Parses a full version such as `3.13.9` or `3.14.0rc2`; `undefined` otherwise.
 *
 * @example
 * ```ts
 * parseVersion("3.14.0rc2"); // { major: 3, minor: 14, patch: 0, prerelease: "rc2" }
 * ```
 */
export function parseVersion(text: string): PythonVersion | undefined {
  const match = VERSION_RE.exec(text);
  if (!match) return undefined;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3]),
    prerelease: match[4] ?? "",
  };
}

/**
 * Formats a version: `3.13.9`, `3.14.0rc2`.
 *
 * @example
 * ```ts
 * formatVersion({ major: 3, minor: 13, patch: 9, prerelease: "" }); // "3.13.9"
 * ```
 */
export function formatVersion(version: PythonVersion): string {
  return `${version.major}.${version.minor}.${version.patch}${version.prerelease}`;
}

function prereleaseRank(prerelease: string): [number, number] {
  const match = /^(a|b|rc)(\d+)$/.exec(prerelease);
  if (!match) return [3, 0];
  return [{ a: 0, b: 1, rc: 2 }[match[1] as "a" | "b" | "rc"], Number(match[2])];
}

function compareRelease(left: number[], right: number[]): number {
  const length = Math.max(left.length, right.length);
  for (let index = 0; index < length; index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

function comparePrerelease(left: string, right: string): number {
  const [leftKind, leftNumber] = prereleaseRank(left);
  const [rightKind, rightNumber] = prereleaseRank(right);
  return Math.sign(leftKind - rightKind || leftNumber - rightNumber);
}

/**
 * Orders versions as PEP 440 does: `3.14.0a1 < 3.14.0rc2 < 3.14.0 < 3.14.1`.
 *
 * @example
 * ```ts
 * [v1, v2].sort(compareVersions); // oldest first
 * ```
 */
export function compareVersions(left: PythonVersion, right: PythonVersion): number {
  return compareRelease(releaseOf(left), releaseOf(right)) ||
    comparePrerelease(left.prerelease, right.prerelease);
}

function releaseOf(version: PythonVersion): number[] {
  return [version.major, version.minor, version.patch];
}

/**
 * True when `version` satisfies one PEP 440 specifier (pre-release filtering aside).
 *
 * @example
 * ```ts
 * satisfies(parseVersion("3.12.4")!, parseSpecifiers("==3.12.*")[0]); // true
 * ```
 */
export function satisfies(version: PythonVersion, specifier: Specifier): boolean {
  const release = releaseOf(version);
  if (specifier.wildcard) {
    const prefix = specifier.release.every((part, index) => (release[index] ?? 0) === part);
    return specifier.op === "!=" ? !prefix : prefix;
  }
  const order = compareRelease(release, specifier.release) ||
    comparePrerelease(version.prerelease, specifier.prerelease);
  switch (specifier.op) {
    case "==":
      return order === 0;
    case "!=":
      return order !== 0;
    case ">=":
      return order >= 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    case "<":
      // PEP 440: `<3.14` must not admit 3.14's own pre-releases.
      return order < 0 &&
        !(specifier.prerelease === "" && version.prerelease !== "" &&
          compareRelease(release, specifier.release) === 0);
    case "~=": {
      const prefix = specifier.release.slice(0, -1);
      return order >= 0 && prefix.every((part, index) => release[index] === part);
    }
  }
}

/**
 * True when `version` meets every specifier of `constraint`; pre-releases only
 * when the constraint names one or `prereleases` is set.
 *
 * @example
 * ```ts
 * versionMatches(parseRequest("3.13") as VersionRequest, parseVersion("3.13.9")!); // true
 * ```
 */
export function versionMatches(
  constraint: Pick<VersionConstraint, "specifiers" | "prereleases">,
  version: PythonVersion,
  options: { prereleases?: boolean } = {},
): boolean {
  if (version.prerelease !== "" && !constraint.prereleases && !options.prereleases) return false;
  return constraint.specifiers.every((specifier) => satisfies(version, specifier));
}

const SPECIFIER_RE = new RegExp(
  String.raw`^(==|!=|>=|<=|~=|>|<)\s*(\d+(?:\.\d+)*)(${PRERELEASE})?(\.\*)?$`,
);

/**
 * Parses a comma-separated PEP 440 specifier set (`>=3.12,<3.14`, `==3.12.*`,
 * `~=3.12.1`, `!=3.13.0`); throws `RequestError` on anything else.
 *
 * @example
 * ```ts
 * parseSpecifiers(">=3.12, <3.14").length; // 2
 * ```
 */
export function parseSpecifiers(text: string): Specifier[] {
  return text.split(",").map((part) => {
    const trimmed = part.trim();
    const match = SPECIFIER_RE.exec(trimmed);
    const fail = (cause: string) =>
      new RequestError(
        `Invalid version specifier ${JSON.stringify(trimmed)} in ${JSON.stringify(text)}: ${cause}`,
      );
    if (!match) throw fail("expected an operator (==, !=, >=, <=, >, <, ~=) and a version");
    const op = match[1] as Operator;
    const release = match[2].split(".").map(Number);
    const wildcard = match[4] !== undefined;
    if (wildcard && op !== "==" && op !== "!=") throw fail(".* only goes with == and !=");
    if (wildcard && match[3]) throw fail(".* cannot follow a pre-release");
    if (op === "~=" && release.length < 2) throw fail("~= needs at least two numbers, e.g. ~=3.12");
    return { op, release, prerelease: match[3] ?? "", wildcard };
  });
}

/**
 * Formats a specifier back to PEP 440 text.
 *
 * @example
 * ```ts
 * formatSpecifier({ op: "==", release: [3, 12], prerelease: "", wildcard: true }); // "==3.12.*"
 * ```
 */
export function formatSpecifier(specifier: Specifier): string {
  return `${specifier.op}${specifier.release.join(".")}${specifier.prerelease}${
    specifier.wildcard ? ".*" : ""
  }`;
}

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

/** Parses a version, a specifier set or `any`/`latest` into a constraint. */
function parseVersionPart(text: string): VersionConstraint | undefined {
  if (text === "any" || text === "latest" || text === "") {
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
  const constraint = parseVersionPart(rest);
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
