import assert from "node:assert/strict";
import { UnsafeEntryError } from "../../src/errors.ts";
import {
  checkEntryType,
  checkSymlinkTarget,
  dirMode,
  displayName,
  entryPath,
  fileMode,
  hardLinkTarget,
  normalizeArchivePath,
  PathIndex,
  utf8Length,
} from "../../src/unpack/entry_policy.ts";

function rule(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UnsafeEntryError, `expected UnsafeEntryError, got ${error}`);
    return error.rule;
  }
  assert.fail("expected an UnsafeEntryError");
}

Deno.test("normalizeArchivePath strips ./, repeated and trailing slashes", () => {
  const cases: [string, string][] = [
    ["python/bin/python3", "python/bin/python3"],
    ["python/lib/", "python/lib"],
    ["./python/lib/", "python/lib"],
    [".//a//b/./c", "a/b/c"],
    ["./", ""],
    [".", ""],
    ["", ""],
    ["...", "..."],
    ["a/..b/c..", "a/..b/c.."],
    ["a\\..\\b", "a\\..\\b"],
  ];
  for (const [input, output] of cases) {
    assert.equal(normalizeArchivePath(input, input), output, input);
  }
});

Deno.test("normalizeArchivePath rejects NUL bytes, absolute paths and .. anywhere", () => {
  assert.match(rule(() => normalizeArchivePath("a\0b", "a\0b")), /path contains a NUL byte/);
  assert.match(rule(() => normalizeArchivePath("/etc/passwd", "/etc/passwd")), /path is absolute/);
  assert.match(rule(() => normalizeArchivePath("//x", "//x")), /absolute/);
  for (const name of ["..", "../x", "a/..", "a/../b", "./a/./../../b", "a//../b"]) {
    assert.match(rule(() => normalizeArchivePath(name, name)), /contains a "\.\." component/, name);
  }
  assert.match(
    rule(() => normalizeArchivePath("../x", "link", "hard link target")),
    /^hard link target contains/,
  );
});

Deno.test("checkSymlinkTarget accepts (../)*name(/name)* within the link's depth", () => {
  assert.equal(checkSymlinkTarget("l", "l", "x"), "x");
  assert.equal(checkSymlinkTarget("l", "bin/l", "../lib/./x/"), "../lib/x");
  assert.equal(checkSymlinkTarget("l", "a/b/c/l", "../../../x"), "../../../x");
  assert.equal(checkSymlinkTarget("l", "a/l", ".//x//y"), "x/y");
});

Deno.test("checkSymlinkTarget rejects targets that could leave the destination", () => {
  assert.match(rule(() => checkSymlinkTarget("l", "l", "")), /empty target/);
  assert.match(rule(() => checkSymlinkTarget("l", "l", "a\0b")), /NUL/);
  assert.match(rule(() => checkSymlinkTarget("l", "a/l", "/etc")), /is absolute/);
  assert.match(rule(() => checkSymlinkTarget("l", "l", "../x")), /leaves the installation/);
  assert.match(
    rule(() => checkSymlinkTarget("l", "a/b/l", "../../../x")),
    /leaves the installation/,
  );
  assert.match(rule(() => checkSymlinkTarget("l", "a/l", "x/../y")), /"\.\." after a name/);
  assert.match(rule(() => checkSymlinkTarget("l2", "l2", "d/l1/..")), /"\.\." after a name/);
  for (const target of [".", "..", "./", "../../..", "a/.."]) {
    assert.ok(
      /names no file|after a name/.test(rule(() => checkSymlinkTarget("l", "a/b/l", target))),
      target,
    );
  }
});

Deno.test("PathIndex returns missing parents shallowest first and stops at a known directory", () => {
  const index = new PathIndex();
  assert.deepEqual(index.missingParents("a/b/c/f", "a/b/c/f"), ["a", "a/b", "a/b/c"]);
  assert.deepEqual(index.missingParents("f", "f"), []);
  index.addDir("a");
  index.addDir("a/b");
  assert.deepEqual(index.missingParents("a/b/c/f", "a/b/c/f"), ["a/b/c"]);
  assert.deepEqual(index.missingParents("a/b/f", "a/b/f"), []);
});

Deno.test("PathIndex refuses parents that are symbolic links or files", () => {
  const index = new PathIndex();
  index.addDir("a");
  index.addSymlink("a/l");
  index.addFile("a/f", 3);
  assert.match(
    rule(() => index.missingParents("a/l/x", "a/l/x")),
    /parent "a\/l" is a symbolic link/,
  );
  assert.match(
    rule(() => index.missingParents("a/l/y/z", "a/l/y/z")),
    /parent "a\/l" is a symbolic link/,
  );
  assert.match(rule(() => index.missingParents("a/f/x", "a/f/x")), /parent "a\/f" is a file/);
  assert.equal(index.kind("a/l"), "symlink");
  assert.equal(index.fileSize("a/f"), 3);
  assert.equal(index.fileSize("a/l"), undefined);
});

Deno.test("utf8Length counts UTF-8 bytes, surrogate pairs included", () => {
  for (const s of ["", "abc", "Ω.txt", "日本語", "🌟.txt", "a🌟Ωb", "\ud800x", "x\udc00"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
  }
});

Deno.test("displayName shortens pathological names only", () => {
  assert.equal(displayName("python/bin/python3"), "python/bin/python3");
  const long = "a/".repeat(1000);
  assert.equal(displayName(long), `${long.slice(0, 200)}…(2000 characters)`);
});

Deno.test("entryPath maps, skips and re-validates mapped names", () => {
  const strip = (name: string) => name.startsWith("python/") ? name.slice(7) : null;
  assert.equal(entryPath("./python/bin/python3", false, strip, 4096), "bin/python3");
  assert.equal(entryPath("other/x", false, strip, 4096), null);
  assert.equal(entryPath("./", true, strip, 4096), null);
  assert.match(rule(() => entryPath("", false, strip, 4096)), /empty name/);
  assert.match(rule(() => entryPath("x", false, () => "./", 4096)), /maps to an empty path/);
  assert.match(rule(() => entryPath("x", false, () => "/etc/x", 4096)), /mapped path is absolute/);
  assert.match(rule(() => entryPath("abcdef", false, (n) => n, 5)), /--max-path-length/);
});

Deno.test("PathIndex.claim lets files replace files and refuses every other overlap", () => {
  const index = new PathIndex();
  index.addFile("f", 1);
  index.addDir("d");
  index.addSymlink("l");
  assert.equal(index.claim("new", "new", "file"), "new");
  assert.equal(index.claim("f", "f", "file"), "replace");
  assert.equal(index.claim("f", "f", "symlink"), "replace");
  assert.equal(index.claim("d", "d/", "dir"), "exists");
  assert.match(rule(() => index.claim("f", "f/", "dir")), /earlier file/);
  assert.match(rule(() => index.claim("d", "d", "file")), /earlier directory/);
  for (const kind of ["file", "dir", "symlink"] as const) {
    assert.match(rule(() => index.claim("l", "l", kind)), /earlier symbolic link/);
  }
});

Deno.test("hardLinkTarget requires a regular file extracted earlier", () => {
  const index = new PathIndex();
  index.addFile("lib/a.so", 10);
  index.addSymlink("lib/l");
  const id = (n: string) => n;
  assert.deepEqual(hardLinkTarget("b", "b", "./lib/a.so", id, index), {
    target: "lib/a.so",
    size: 10,
  });
  assert.match(rule(() => hardLinkTarget("b", "b", "lib/l", id, index)), /is a symbolic link/);
  assert.match(rule(() => hardLinkTarget("b", "b", "lib/x", id, index)), /was not extracted/);
  assert.match(rule(() => hardLinkTarget("b", "b", "lib/a.so", () => null, index)), /is skipped/);
  assert.match(rule(() => hardLinkTarget("lib/a.so", "lib/a.so", "lib/a.so", id, index)), /itself/);
});

Deno.test("fileMode and dirMode clear special bits and keep the owner's access", () => {
  assert.equal(fileMode(0o4755), 0o755);
  assert.equal(fileMode(0o7444), 0o644);
  assert.equal(fileMode(0o000), 0o600);
  assert.equal(dirMode(0o555), 0o755);
});

Deno.test("fileMode and dirMode follow the PEP 706 data filter: no group or other write", () => {
  assert.equal(fileMode(0o666), 0o644);
  assert.equal(fileMode(0o777), 0o755);
  assert.equal(fileMode(0o4777), 0o755);
  // Group/other execute is dropped when the owner has none.
  assert.equal(fileMode(0o677), 0o644);
  assert.equal(dirMode(0o777), 0o755);
  assert.equal(dirMode(0o1777), 0o755);
  assert.equal(dirMode(0o2775), 0o755);
});

Deno.test("checkEntryType allows files, directories and links only", () => {
  for (const type of ["file", "directory", "symlink", "link"] as const) {
    checkEntryType({ name: "x", size: 0, type });
  }
  for (const type of ["character-device", "block-device", "fifo"] as const) {
    assert.match(
      rule(() => checkEntryType({ name: "x", size: 0, type })),
      /entries are not allowed/,
    );
  }
  assert.match(
    rule(() => checkEntryType({ name: "x", size: 0, pax: { "GNU.sparse.map": "0,1" } })),
    /sparse/,
  );
});
