/**
 * Every archive of the third-party corpus in tests/support/corpus/node-tar (see its README)
 * goes through decompression and extraction; each has an explicit expected outcome,
 * and in every case nothing may exist outside the destination.
 */
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ArchiveError, PyprimeError, UnsafeEntryError } from "../../src/errors.ts";
import { decompress } from "../../src/unpack/decompress.ts";
import { type ExtractResult, extractTar } from "../../src/unpack/extract.ts";

const CORPUS = fileURLToPath(new URL("../support/corpus/node-tar/", import.meta.url));

/** A file's size, "dir", or "-> target" for a symbolic link. */
type Node = number | "dir" | `-> ${string}`;

type Expected =
  | {
    format: "tar" | "gzip" | "zstd";
    result: ExtractResult;
    /** Paths that must exist; when `exact`, the whole tree. */
    paths: Record<string, Node>;
    exact?: boolean;
    /** Groups of paths that must be the same inode (hard links). */
    sameInode?: string[][];
  }
  | { unsafe: { entry: string | RegExp; rule: RegExp } }
  | { corrupt: RegExp };

const c = (n: number) => "c".repeat(n);
const LONG_DIR = "long-path/r/e/a/l/l/y/-/d/e/e/p/-/f/o/l/d/e/r/-/p/a/t/h";
const X_FILES: Record<string, Node> = Object.fromEntries([
  ["x", "dir"],
  ...Array.from({ length: 10 }, (_, i) => [`x/${i + 1}`, i === 9 ? 3 : 2]),
]);

const EXPECTED: Record<string, Expected> = {
  "bad-cksum.tar": { corrupt: /invalid tar header checksum/ },
  "body-byte-counts.tar": {
    format: "tar",
    result: { entries: 4, files: 4, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 1537 },
    paths: { "1024-bytes.txt": 1024, "512-bytes.txt": 512, "one-byte.txt": 1, "zero-byte.txt": 0 },
    exact: true,
  },
  "dir-normalization.tar": {
    unsafe: {
      entry: "fixtures/the-chumbler",
      rule: /target "\/a\/b\/c\/d\/the-chumbler" is absolute/,
    },
  },
  "dir.tar": {
    format: "tar",
    result: { entries: 1, files: 0, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 0 },
    paths: { dir: "dir" },
    exact: true,
  },
  "emptypax.tar": {
    format: "tar",
    result: { entries: 2, files: 2, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 107 },
    paths: { "🌟.txt": 106, "one-byte.txt": 1 },
    exact: true,
  },
  "example.tzst": {
    format: "zstd",
    result: { entries: 11, files: 10, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 21 },
    paths: X_FILES,
    exact: true,
  },
  // A 444 kB PAX path: over maxPathLength long before the file system would choke.
  "excessively-deep.tar": {
    unsafe: { entry: /^\.\/a\/a\/a\/.*…\(444749 characters\)$/, rule: /--max-path-length/ },
  },
  "file.tar": {
    format: "tar",
    result: { entries: 1, files: 1, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 1 },
    paths: { "one-byte.txt": 1 },
    exact: true,
  },
  // The name comes from a PAX global header.
  "global-header.tar": {
    format: "tar",
    result: { entries: 1, files: 1, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 1 },
    paths: { ab: 1 },
    exact: true,
  },
  "links-invalid.tar": { unsafe: { entry: "hardlink-2", rule: /hard link has an empty target/ } },
  // No end-of-archive blocks: strict decoding calls that truncated, after the links.
  "links-strip.tar": { corrupt: /tar archive is truncated/ },
  "links.tar": {
    format: "tar",
    result: { entries: 3, files: 1, dirs: 0, symlinks: 1, hardlinks: 1, bytes: 26 },
    paths: { "hardlink-1": 26, "hardlink-2": 26, symlink: "-> hardlink-2" },
    exact: true,
    sameInode: [["hardlink-1", "hardlink-2"]],
  },
  "long-linkname.tar": {
    format: "tar",
    result: { entries: 1, files: 0, dirs: 0, symlinks: 1, hardlinks: 0, bytes: 0 },
    paths: { test: `-> ${"a".repeat(132)}verylongname` },
    exact: true,
  },
  "long-paths.tar": {
    format: "tar",
    result: { entries: 32, files: 8, dirs: 24, symlinks: 0, hardlinks: 0, bytes: 608 },
    paths: {
      [`100-byte-filename-${c(82)}`]: 100,
      [`120-byte-filename-${c(102)}`]: 100,
      [`170-byte-filename-${c(152)}`]: 100,
      [LONG_DIR]: "dir",
      [`${LONG_DIR}/a.txt`]: 6,
      [`${LONG_DIR}/Ω.txt`]: 2,
    },
  },
  // No end-of-archive blocks either.
  "long-pax.tar": { corrupt: /tar archive is truncated/ },
  "next-file-has-long.tar": {
    format: "tar",
    result: { entries: 2, files: 1, dirs: 0, symlinks: 1, hardlinks: 0, bytes: 100 },
    paths: {
      [`170-byte-filename-${c(152)}`]: 100,
      longlink: `-> 170-byte-filename-${c(152)}`,
    },
    exact: true,
  },
  "null-byte.tar": {
    format: "tar",
    result: { entries: 2, files: 1, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 200 },
    paths: {
      "this_is_a_really_long_directory_name_with_a_lot_of_characters": "dir",
      "this_is_a_really_long_directory_name_with_a_lot_of_characters/this_is_a_really_long_tgz_file_with_a_lot_of_characters.tgz":
        200,
    },
    exact: true,
  },
  "path-missing.tar": { unsafe: { entry: "", rule: /empty name/ } },
  // Despite its name, a valid gzip stream (node-tar uses it for its sync API).
  "sync-gzip-fail.tgz": {
    format: "gzip",
    result: { entries: 11, files: 10, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 21 },
    paths: X_FILES,
    exact: true,
  },
  "trailing-slash-corner-case.tar": {
    format: "tar",
    result: { entries: 3, files: 2, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 1120 },
    paths: {
      [`99-byte-dirname-${c(83)}`]: "dir",
      [`99-byte-dirname-${c(83)}/some-unlucky-file.txt`]: 560,
      [`99-byte-dirname-${c(83)}/a-truly-unlucky-file-beyond-130-byte-path-length.txt`]: 560,
    },
    exact: true,
  },
  "utf8.tar": {
    format: "tar",
    result: { entries: 3, files: 3, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 110 },
    paths: { "Ω.txt": 2, "🌟.txt": 106, [`${LONG_DIR}/Ω.txt`]: 2 },
  },
};

/** The tree under `root`: relative path to size, "dir" or "-> target". */
function tree(root: string, rel = "", out: Record<string, Node> = {}): Record<string, Node> {
  for (const entry of Deno.readDirSync(rel ? `${root}/${rel}` : root)) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isSymlink) out[path] = `-> ${Deno.readLinkSync(`${root}/${path}`)}`;
    else if (entry.isDirectory) {
      out[path] = "dir";
      tree(root, path, out);
    } else out[path] = Deno.lstatSync(`${root}/${path}`).size;
  }
  return out;
}

/**
 * Checks that `parent` holds nothing but `dest`, and that every symbolic link under
 * `dest` resolves inside it (dangling ones lexically, from their real directory).
 */
function assertContained(parent: string, dest: string): void {
  assert.deepEqual([...Deno.readDirSync(parent)].map((e) => e.name), ["dest"]);
  const realDest = Deno.realPathSync(dest);
  const inside = (path: string) => path === realDest || path.startsWith(`${realDest}/`);
  for (const [rel, node] of Object.entries(tree(dest))) {
    if (typeof node !== "string" || !node.startsWith("-> ")) continue;
    const link = `${dest}/${rel}`;
    let resolved: string;
    try {
      resolved = Deno.realPathSync(link);
    } catch {
      resolved = resolve(Deno.realPathSync(dirname(link)), Deno.readLinkSync(link));
    }
    assert.ok(inside(resolved), `${rel} resolves outside dest: ${resolved}`);
  }
}

/** Extracts `open()`'s stream as archive `name` and checks the outcome against `expected`. */
async function run(
  name: string,
  expected: Expected,
  open: () => Promise<ReadableStream<Uint8Array>>,
): Promise<void> {
  const parent = await Deno.makeTempDir({ prefix: "pyprime-corpus-test-" });
  const dest = `${parent}/dest`;
  await Deno.mkdir(dest);
  try {
    const source = await open();
    let outcome: { format: string; result: ExtractResult } | { error: unknown };
    try {
      const { format, stream } = await decompress(source, name);
      outcome = { format, result: await extractTar(stream, { dest, label: name }) };
    } catch (error) {
      outcome = { error };
    }
    assertContained(parent, dest);
    if ("error" in outcome) {
      const error = outcome.error;
      assert.ok(error instanceof PyprimeError, `${name}: unexpected ${error}`);
      if ("unsafe" in expected) {
        assert.ok(
          error instanceof UnsafeEntryError,
          `${name}: expected UnsafeEntryError, got ${error}`,
        );
        if (typeof expected.unsafe.entry === "string") {
          assert.equal(error.entry, expected.unsafe.entry);
        } else assert.match(error.entry, expected.unsafe.entry);
        assert.match(error.rule, expected.unsafe.rule);
      } else if ("corrupt" in expected) {
        assert.ok(error instanceof ArchiveError, `${name}: expected ArchiveError, got ${error}`);
        assert.match(error.message, new RegExp(`^Cannot read ${name.replace(/\./g, "\\.")}: `));
        assert.match(error.message, expected.corrupt);
      } else {
        assert.fail(`${name} should extract, but failed: ${error}`);
      }
      return;
    }
    assert.ok("result" in expected, `${name} should fail, but extracted`);
    assert.equal(outcome.format, expected.format);
    assert.deepEqual(outcome.result, expected.result);
    const actual = tree(dest);
    if (expected.exact) assert.deepEqual(actual, expected.paths);
    else {for (const [path, node] of Object.entries(expected.paths)) {
        assert.equal(actual[path], node, path);
      }}
    for (const group of expected.sameInode ?? []) {
      const inodes = new Set(group.map((p) => Deno.lstatSync(`${dest}/${p}`).ino));
      assert.equal(inodes.size, 1, `${group.join(", ")} are not hard links of one file`);
    }
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
}

Deno.test("corpus: the expectation table covers exactly the archives in tests/support/corpus/node-tar", () => {
  const archives = [...Deno.readDirSync(CORPUS)].map((e) => e.name).sort();
  assert.deepEqual(archives, Object.keys(EXPECTED).sort());
});

for (const name of Object.keys(EXPECTED).sort()) {
  const expected = EXPECTED[name];
  const outcome = "unsafe" in expected
    ? "is rejected as unsafe"
    : "corrupt" in expected
    ? "fails as corrupt"
    : "extracts inside dest";
  Deno.test(`corpus: ${name} ${outcome}`, () =>
    run(name, expected, async () => (await Deno.open(`${CORPUS}${name}`)).readable));
}

Deno.test("corpus: sync-gzip-fail.tgz with a broken CRC fails as corrupt", async () => {
  const bytes = await Deno.readFile(`${CORPUS}sync-gzip-fail.tgz`);
  bytes[bytes.length - 8] ^= 0xff; // first byte of the gzip CRC32 trailer
  await run("broken.tgz", { corrupt: /./ }, () => Promise.resolve(new Blob([bytes]).stream()));
});
