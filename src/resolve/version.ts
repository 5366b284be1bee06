/**
 * CPython versions and PEP 440 specifiers: parsing, formatting, ordering (pre-releases
 * before the final release) and matching.
 *
 * @module
 */
import { RequestError } from "./request_error.ts";

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

/** A pre-release tag in a regular expression: `a1`, `b3`, `rc2`. */
export const PRERELEASE = String.raw`(?:a|b|rc)\d+`;
const VERSION_RE = new RegExp(String.raw`^(\d+)\.(\d+)\.(\d+)(${PRERELEASE})?$`);
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
  constraint: { specifiers: Specifier[]; prereleases: boolean },
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
