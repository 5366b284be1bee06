import assert from "node:assert/strict";
import {
  installKey,
  type KeyRequest,
  matchesInstalled,
  parseKey,
  parseRequest,
  type PythonRequest,
  type VersionRequest,
} from "../../src/resolve/request.ts";
import { RequestError } from "../../src/resolve/request_error.ts";
import {
  compareVersions,
  formatSpecifier,
  parseSpecifiers,
  parseVersion,
  satisfies,
  versionMatches,
} from "../../src/resolve/version.ts";

const noFiles = { exists: () => false };

function parse(text: string): PythonRequest {
  return parseRequest(text, noFiles);
}

function specifiersOf(text: string): string {
  const request = parse(text) as VersionRequest | KeyRequest;
  return request.specifiers.map(formatSpecifier).join(",");
}

Deno.test("parseRequest turns version forms into prefix or exact specifiers", () => {
  const table: [string, string, string | null, boolean][] = [
    ["3", "==3.*", null, false],
    ["3.13", "==3.13.*", null, false],
    ["3.13.9", "==3.13.9", null, false],
    ["3.14.0rc2", "==3.14.0rc2", null, true],
    ["3.14rc2", "==3.14.0rc2", null, true],
    ["3.13t", "==3.13.*", "freethreaded", false],
    ["3.13+freethreaded", "==3.13.*", "freethreaded", false],
    ["3.13+debug", "==3.13.*", "debug", false],
    ["3.13t+debug", "==3.13.*", "freethreaded+debug", false],
    ["3.13+freethreaded+debug", "==3.13.*", "freethreaded+debug", false],
    ["3.13.9t", "==3.13.9", "freethreaded", false],
    ["3.13+gil", "==3.13.*", null, false],
    ["cpython-3.13.9", "==3.13.9", null, false],
    ["cpython@3.13", "==3.13.*", null, false],
    ["cp312", "==3.12.*", null, false],
    ["python3.12", "==3.12.*", null, false],
    ["312", "==3.12.*", null, false],
    ["any", "", null, false],
    [">=3.12,<3.14", ">=3.12,<3.14", null, false],
    [">= 3.12, < 3.14", ">=3.12,<3.14", null, false],
    ["==3.12.*", "==3.12.*", null, false],
    ["~=3.12.1", "~=3.12.1", null, false],
    ["!=3.13.0", "!=3.13.0", null, false],
    [">=3.15.0a1", ">=3.15.0a1", null, true],
  ];
  for (const [text, specifiers, variant, prereleases] of table) {
    const request = parse(text);
    assert.equal(request.kind, "version", text);
    assert.equal(specifiersOf(text), specifiers, text);
    assert.equal((request as VersionRequest).variant, variant, text);
    assert.equal((request as VersionRequest).prereleases, prereleases, text);
    assert.equal((request as VersionRequest).text, text, text);
  }
});

Deno.test("parseRequest reads keys with their platform parts and variant", () => {
  const musl = parse("cpython-3.13.9-linux-aarch64-musl") as KeyRequest;
  assert.deepEqual(
    { kind: musl.kind, os: musl.os, arch: musl.arch, libc: musl.libc, variant: musl.variant },
    { kind: "key", os: "linux", arch: "aarch64", libc: "musl", variant: null },
  );
  assert.equal(specifiersOf("cpython-3.13.9-linux-aarch64-musl"), "==3.13.9");

  const freethreaded = parse("cpython-3.13.9+freethreaded-linux-x86_64-gnu") as KeyRequest;
  assert.equal(freethreaded.variant, "freethreaded");
  assert.equal(freethreaded.archVariant, undefined);

  const leveled = parse("CPython-3.13.9-linux-x86_64_v3-gnu") as KeyRequest;
  assert.equal(leveled.arch, "x86_64");
  assert.equal(leveled.archVariant, "v3");

  const darwin = parse("cpython-3.12-darwin-aarch64-none") as KeyRequest;
  assert.equal(darwin.os, "macos");
  assert.equal(specifiersOf("cpython-3.12-darwin-aarch64-none"), "==3.12.*");

  const partial = parse("cpython-3.12-linux") as KeyRequest;
  assert.deepEqual([partial.kind, partial.os, partial.arch, partial.libc], [
    "key",
    "linux",
    undefined,
    undefined,
  ]);
});

Deno.test("parseRequest recognizes stdin, URLs and archive paths before versions", () => {
  assert.deepEqual(parse("-"), { kind: "stdin" });
  assert.deepEqual(parse("https://example.com/a.tar.gz"), {
    kind: "url",
    url: "https://example.com/a.tar.gz",
  });
  assert.deepEqual(parse("HTTP://example.com/a.tar.gz"), {
    kind: "url",
    url: "HTTP://example.com/a.tar.gz",
  });
  assert.deepEqual(parse("file:///srv/a.tar.zst"), { kind: "url", url: "file:///srv/a.tar.zst" });
  for (
    const path of ["./python.tar.gz", "dir/3.13", "/abs/file", "archive.tgz", "a.tzst", "a.tar"]
  ) {
    assert.deepEqual(parse(path), { kind: "file", path }, path);
  }
  const named = "cpython-3.13.9+20251014-x86_64-unknown-linux-gnu-install_only.tar.gz";
  assert.deepEqual(parse(named), { kind: "file", path: named });
});

Deno.test("parseRequest takes an existing path only when it is not a version", () => {
  const exists = (path: string) => path === "mybuild" || path === "3.13";
  assert.deepEqual(parseRequest("mybuild", { exists }), { kind: "file", path: "mybuild" });
  assert.equal(parseRequest("3.13", { exists }).kind, "version");
});

Deno.test("parseRequest rejects malformed requests with a hint listing accepted forms", () => {
  const invalid = [
    "",
    "  ",
    "3.x",
    "foo",
    "3.13.9.1",
    "3rc1",
    "3.13tt",
    "3.13+foo",
    "3.13+gil+freethreaded",
    "3.13+debug+debug",
    ">=3.12,<",
    "==3.12rc1.*",
    ">3.12.*",
    "~=3",
    "=>3.12",
    "cpython-3.13.9-plan9-x86_64-gnu",
    "cpython-3.13.9-linux-sparc-gnu",
    "cpython-3.13.9-linux-x86_64-glibc",
    "cpython-3.13.9-linux-aarch64_v3-gnu",
    "cpython-3.13.9-linux-x86_64-gnu-extra",
    "cpython-3.x-linux",
    "ftp://example.com/a.tar.gz",
  ];
  for (const text of invalid) {
    assert.throws(() => parse(text), (error: unknown) => {
      assert.ok(error instanceof RequestError, `${JSON.stringify(text)}: ${error}`);
      assert.match(error.hint ?? "", /3\.13t|==|\.\*|~=|operator/, text);
      return true;
    }, text);
  }
});

Deno.test("parseRequest explains that PyPy and GraalPy are not CPython", () => {
  for (const text of ["pypy3.10", "pypy@3.10", "graalpy", "pp310"]) {
    assert.throws(() => parse(text), /CPython only/, text);
  }
});

Deno.test("satisfies follows PEP 440 for each operator", () => {
  const table: [string, string, boolean][] = [
    ["3.12.4", "==3.12.*", true],
    ["3.13.0", "==3.12.*", false],
    ["3.13.0", "!=3.12.*", true],
    ["3.12.0", "!=3.12.*", false],
    ["3.12.0", "==3.12", true],
    ["3.12.1", "==3.12", false],
    ["3.12.0", ">=3.12", true],
    ["3.11.9", ">=3.12", false],
    ["3.12.0", ">3.12", false],
    ["3.12.1", ">3.12", true],
    ["3.13.9", "<=3.13.9", true],
    ["3.13.10", "<=3.13.9", false],
    ["3.13.9", "<3.14", true],
    ["3.14.0rc1", "<3.14", false],
    ["3.14.0rc1", "<3.14.0rc2", true],
    ["3.14.0", ">3.14.0rc2", true],
    ["3.14.0b4", ">=3.14.0rc1", false],
    ["3.12.5", "~=3.12.1", true],
    ["3.12.0", "~=3.12.1", false],
    ["3.13.0", "~=3.12.1", false],
    ["3.13.0", "~=3.12", true],
    ["4.0.0", "~=3.12", false],
    ["3.13.1", "!=3.13.0", true],
    ["3.13.0", "!=3.13.0", false],
  ];
  for (const [version, specifier, expected] of table) {
    const parsed = parseVersion(version);
    assert.ok(parsed, version);
    assert.equal(
      satisfies(parsed, parseSpecifiers(specifier)[0]),
      expected,
      `${version} ${specifier}`,
    );
  }
});

Deno.test("versionMatches leaves pre-releases out unless named or allowed", () => {
  const rc = parseVersion("3.14.0rc1")!;
  const minor = parse("3.14") as VersionRequest;
  assert.equal(versionMatches(minor, rc), false);
  assert.equal(versionMatches(minor, rc, { prereleases: true }), true);
  assert.equal(versionMatches(parse("3.14.0rc1") as VersionRequest, rc), true);
  assert.equal(versionMatches(parse(">=3.14.0a1") as VersionRequest, rc), true);
  assert.equal(
    versionMatches(parse(">=3.12,<3.14") as VersionRequest, parseVersion("3.13.9")!),
    true,
  );
  assert.equal(
    versionMatches(parse(">=3.12,<3.14") as VersionRequest, parseVersion("3.14.0")!),
    false,
  );
});

Deno.test("compareVersions orders pre-releases before the final release", () => {
  const sorted = ["3.14.1", "3.14.0", "3.14.0rc2", "3.14.0a1", "3.14.0b3", "3.13.10", "3.13.9"]
    .map((text) => parseVersion(text)!)
    .sort(compareVersions)
    .map((version) => `${version.major}.${version.minor}.${version.patch}${version.prerelease}`);
  assert.deepEqual(sorted, [
    "3.13.9",
    "3.13.10",
    "3.14.0a1",
    "3.14.0b3",
    "3.14.0rc2",
    "3.14.0",
    "3.14.1",
  ]);
});

Deno.test("installKey puts the variant after the version and parseKey reverses it", () => {
  const parts = {
    version: parseVersion("3.13.9")!,
    variant: "freethreaded" as const,
    os: "linux",
    arch: "x86_64",
    archVariant: "v3",
    libc: "gnu",
  };
  const key = installKey(parts);
  assert.equal(key, "cpython-3.13.9+freethreaded-linux-x86_64_v3-gnu");
  assert.deepEqual(parseKey(key), parts);
  assert.equal(
    installKey({ ...parts, variant: null, archVariant: undefined }),
    "cpython-3.13.9-linux-x86_64-gnu",
  );
  assert.equal(parseKey("cpython-3.12.3-darwin-aarch64-none").os, "macos");
  assert.equal(
    parseKey("cpython-3.14.0rc2+freethreaded+debug-linux-aarch64-musl").variant,
    "freethreaded+debug",
  );
  for (
    const bad of [
      "cpython-3.13-linux-x86_64-gnu",
      "pypy-3.10.14-linux-x86_64-gnu",
      "cpython-3.13.9-linux-x86_64",
    ]
  ) {
    assert.throws(() => parseKey(bad), RequestError, bad);
  }
});

Deno.test("matchesInstalled compares version, variant and the platform parts a key names", () => {
  const gnu = "cpython-3.13.9-linux-x86_64-gnu";
  const v3 = "cpython-3.13.9-linux-x86_64_v3-gnu";
  const free = "cpython-3.13.9+freethreaded-linux-x86_64-gnu";
  const arm = "cpython-3.13.9-linux-aarch64-musl";
  const rc = "cpython-3.15.0rc1-linux-x86_64-gnu";
  const cases: [string, string, boolean][] = [
    ["3.13", gnu, true],
    ["3.13", free, false],
    ["3.13t", free, true],
    ["3.12", gnu, false],
    [">=3.12,<3.14", gnu, true],
    ["3.15", rc, true],
    ["cpython-3.13-linux-aarch64", arm, true],
    ["cpython-3.13-linux-aarch64", gnu, false],
    ["cpython-3.13.9-linux-x86_64-gnu", v3, true],
    ["cpython-3.13.9-linux-x86_64_v3-gnu", gnu, false],
    ["cpython-3.13.9-linux-x86_64-musl", gnu, false],
    ["3.13", "not-a-key", false],
    ["./cpython.tar.gz", gnu, false],
  ];
  for (const [request, key, expected] of cases) {
    assert.equal(matchesInstalled(parse(request), key), expected, `${request} vs ${key}`);
  }
});
