import assert from "node:assert/strict";
import { packTar, type TarEntry, type TarHeader } from "modern-tar";
import { ArchiveError, PyprimeError, UnsafeEntryError } from "../../src/errors.ts";
import {
  type ExtractOptions,
  type ExtractResult,
  extractTar,
  type WrittenPath,
} from "../../src/unpack/extract.ts";
import { DEFAULT_LIMITS } from "../../src/unpack/limits.ts";
import { streamOf } from "../support/helpers.ts";

const encoder = new TextEncoder();
const MTIME = new Date("2020-01-02T03:04:05Z");

type Bytes = Uint8Array<ArrayBuffer>;
type Spec = Partial<TarHeader> & { name: string; body?: string | Uint8Array };

/** A tar archive of `specs`; `file` entries get their body's size. */
function tar(specs: Spec[]): Promise<Bytes> {
  const entries: TarEntry[] = specs.map(({ body, ...header }) => {
    const data = typeof body === "string" ? encoder.encode(body) : body;
    return {
      header: { mtime: MTIME, type: "file", ...header, size: data?.length ?? 0 },
      body: data,
    };
  });
  return packTar(entries);
}

/**
 * Runs `fn` with an empty `dest` inside a fresh parent folder, then checks that
 * nothing appeared next to `dest`, and removes everything.
 */
async function sandbox(fn: (dest: string, parent: string) => Promise<void>): Promise<void> {
  const parent = await Deno.makeTempDir({ prefix: "pyprime-extract-test-" });
  const dest = `${parent}/dest`;
  await Deno.mkdir(dest);
  try {
    await fn(dest, parent);
    assert.deepEqual([...Deno.readDirSync(parent)].map((e) => e.name), ["dest"]);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
}

async function extract(
  specs: Spec[] | Bytes,
  dest: string,
  options: Partial<ExtractOptions> = {},
): Promise<ExtractResult> {
  const bytes = specs instanceof Uint8Array ? specs : await tar(specs);
  return extractTar(streamOf(bytes, 700), { dest, label: "test.tar", ...options });
}

// deno-lint-ignore no-explicit-any
async function rejection<E extends Error>(promise: Promise<unknown>, type: new (...a: any[]) => E) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    return error;
  }
  assert.fail(`expected ${type.name}, but it resolved`);
}

const text = (path: string) => Deno.readTextFileSync(path);
const mode = (path: string) => Deno.lstatSync(path).mode! & 0o7777;

Deno.test("extractTar writes files, directories, symlinks and hard links", async () => {
  await sandbox(async (dest) => {
    const big = new Uint8Array(200_000).map((_, i) => (i * 7919) % 251);
    const seen: [string, number][] = [];
    const result = await extract(
      [
        { name: "pkg/", type: "directory" },
        { name: "pkg/a.txt", body: "hello" },
        { name: "pkg/bin/tool", body: "#!/bin/sh\n", mode: 0o755 },
        { name: "pkg/big.bin", body: big },
        { name: "pkg/link", type: "symlink", linkname: "a.txt" },
        { name: "pkg/hard", type: "link", linkname: "pkg/a.txt" },
        { name: "pkg/sub/deep/x.py", body: "x = 1\n" },
      ],
      dest,
      { onFile: (rel, size) => seen.push([rel, size]) },
    );

    assert.deepEqual(result, {
      entries: 7,
      files: 4,
      dirs: 1,
      symlinks: 1,
      hardlinks: 1,
      bytes: 5 + 10 + 200_000 + 6,
    });
    assert.equal(text(`${dest}/pkg/a.txt`), "hello");
    assert.deepEqual(Deno.readFileSync(`${dest}/pkg/big.bin`), big);
    assert.equal(Deno.readLinkSync(`${dest}/pkg/link`), "a.txt");
    assert.equal(Deno.lstatSync(`${dest}/pkg/hard`).ino, Deno.lstatSync(`${dest}/pkg/a.txt`).ino);
    assert.equal(text(`${dest}/pkg/sub/deep/x.py`), "x = 1\n");
    assert.deepEqual(seen, [
      ["pkg/a.txt", 5],
      ["pkg/bin/tool", 10],
      ["pkg/big.bin", 200_000],
      ["pkg/hard", 5],
      ["pkg/sub/deep/x.py", 6],
    ]);
  });
});

Deno.test("extractTar normalizes ./ prefixes, repeated slashes and skips the ./ entry", async () => {
  await sandbox(async (dest) => {
    const names: string[] = [];
    const result = await extract(
      [
        { name: "./", type: "directory" },
        { name: ".//a//b/./c.txt", body: "c" },
        { name: "./a/", type: "directory" },
      ],
      dest,
      { mapName: (name) => (names.push(name), name) },
    );
    assert.deepEqual(names, ["a/b/c.txt", "a"]);
    assert.equal(text(`${dest}/a/b/c.txt`), "c");
    assert.equal(result.dirs, 1);
  });
});

Deno.test("extractTar applies mapName to entries and hard-link targets, and skips null", async () => {
  await sandbox(async (dest) => {
    const result = await extract(
      [
        { name: "python/install/lib/x.py", body: "x" },
        { name: "python/install/lib/y.py", type: "link", linkname: "python/install/lib/x.py" },
        { name: "python/build/junk.o", body: "junk" },
      ],
      dest,
      {
        mapName: (name) =>
          name.startsWith("python/install/") ? name.slice("python/install/".length) : null,
      },
    );
    assert.deepEqual([...Deno.readDirSync(dest)].map((e) => e.name), ["lib"]);
    assert.equal(text(`${dest}/lib/y.py`), "x");
    assert.equal(result.entries, 3);
    assert.equal(result.files, 1);
    assert.equal(result.hardlinks, 1);
  });
});

Deno.test("extractTar propagates an error thrown by mapName unchanged", async () => {
  await sandbox(async (dest) => {
    const thrown = new ArchiveError("not a python-build-standalone archive");
    const error = await rejection(
      extract([{ name: "other/x", body: "x" }], dest, {
        mapName: () => {
          throw thrown;
        },
      }),
      ArchiveError,
    );
    assert.equal(error, thrown);
  });
});

interface RejectCase {
  what: string;
  specs: Spec[];
  entry: string;
  rule: RegExp;
  mapName?: (name: string) => string | null;
}

const REJECTED: RejectCase[] = [
  {
    what: "an absolute path",
    specs: [{ name: "/tmp/evil", body: "x" }],
    entry: "/tmp/evil",
    rule: /absolute/,
  },
  {
    what: "a leading ..",
    specs: [{ name: "../evil", body: "x" }],
    entry: "../evil",
    rule: /"\.\."/,
  },
  {
    what: "a .. that climbs out",
    specs: [{ name: "a/../../evil", body: "x" }],
    entry: "a/../../evil",
    rule: /"\.\."/,
  },
  {
    what: "a .. that stays inside",
    specs: [{ name: "a/../b", body: "x" }],
    entry: "a/../b",
    rule: /"\.\."/,
  },
  { what: "an empty name", specs: [{ name: "", body: "x" }], entry: "", rule: /empty name/ },
  {
    what: "a NUL byte in a PAX path",
    specs: [{ name: "a", body: "x", pax: { path: "a\0b" } }],
    entry: "a\\x00b", // printed escaped
    rule: /NUL/,
  },
  {
    what: "a mapped path that climbs out",
    specs: [{ name: "x", body: "x" }],
    entry: "x",
    rule: /mapped path contains a "\.\."/,
    mapName: (name) => name === "x" ? "../x" : name,
  },
  {
    what: "an absolute symlink target",
    specs: [{ name: "l", type: "symlink", linkname: "/etc/passwd" }],
    entry: "l",
    rule: /absolute/,
  },
  {
    what: "a symlink climbing above its depth",
    specs: [{ name: "a/l", type: "symlink", linkname: "../../outside" }],
    entry: "a/l",
    rule: /leaves the installation/,
  },
  {
    what: "a top-level symlink to ..",
    specs: [{ name: "l", type: "symlink", linkname: "../x" }],
    entry: "l",
    rule: /leaves the installation/,
  },
  {
    what: "a symlink with .. after a name (chained through another link)",
    specs: [
      { name: "d/l1", type: "symlink", linkname: "../x" },
      { name: "l2", type: "symlink", linkname: "d/l1/../../outside" },
    ],
    entry: "l2",
    rule: /"\.\." after a name/,
  },
  {
    what: "a symlink to its own directory's parent",
    specs: [{ name: "d/l", type: "symlink", linkname: ".." }],
    entry: "d/l",
    rule: /names no file/,
  },
  {
    what: "a symlink to .",
    specs: [{ name: "l", type: "symlink", linkname: "." }],
    entry: "l",
    rule: /names no file/,
  },
  {
    what: "an empty symlink target",
    specs: [{ name: "l", type: "symlink", linkname: "" }],
    entry: "l",
    rule: /empty target/,
  },
  {
    what: "a file below a symlink",
    specs: [{ name: "d/", type: "directory" }, { name: "l", type: "symlink", linkname: "d" }, {
      name: "l/f",
      body: "x",
    }],
    entry: "l/f",
    rule: /parent "l" is a symbolic link/,
  },
  {
    what: "an implicit directory below a symlink",
    specs: [{ name: "l", type: "symlink", linkname: "d" }, { name: "l/sub/f", body: "x" }],
    entry: "l/sub/f",
    rule: /parent "l" is a symbolic link/,
  },
  {
    what: "a file at an earlier symlink's path",
    specs: [{ name: "f", body: "x" }, { name: "l", type: "symlink", linkname: "f" }, {
      name: "l",
      body: "y",
    }],
    entry: "l",
    rule: /earlier symbolic link has the same path/,
  },
  {
    what: "a directory at an earlier symlink's path",
    specs: [{ name: "l", type: "symlink", linkname: "d" }, { name: "l/", type: "directory" }],
    entry: "l/",
    rule: /earlier symbolic link has the same path/,
  },
  {
    what: "a symlink at an earlier symlink's path",
    specs: [{ name: "l", type: "symlink", linkname: "a" }, {
      name: "l",
      type: "symlink",
      linkname: "b",
    }],
    entry: "l",
    rule: /earlier symbolic link has the same path/,
  },
  {
    what: "a hard link at an earlier symlink's path",
    specs: [{ name: "f", body: "x" }, { name: "l", type: "symlink", linkname: "f" }, {
      name: "l",
      type: "link",
      linkname: "f",
    }],
    entry: "l",
    rule: /earlier symbolic link has the same path/,
  },
  {
    what: "a directory at an earlier file's path",
    specs: [{ name: "a", body: "x" }, { name: "a/", type: "directory" }],
    entry: "a/",
    rule: /earlier file has the same path/,
  },
  {
    what: "a file at an earlier directory's path",
    specs: [{ name: "a/", type: "directory" }, { name: "a", body: "x" }],
    entry: "a",
    rule: /earlier directory has the same path/,
  },
  {
    what: "a file below a file",
    specs: [{ name: "a", body: "x" }, { name: "a/b", body: "y" }],
    entry: "a/b",
    rule: /parent "a" is a file/,
  },
  {
    what: "a hard link to a missing file",
    specs: [{ name: "h", type: "link", linkname: "missing" }],
    entry: "h",
    rule: /"missing" was not extracted before it/,
  },
  {
    what: "a hard link to a file that comes later",
    specs: [{ name: "h", type: "link", linkname: "f" }, { name: "f", body: "x" }],
    entry: "h",
    rule: /was not extracted before it/,
  },
  {
    what: "a hard link to a symlink",
    specs: [{ name: "l", type: "symlink", linkname: "x" }, {
      name: "h",
      type: "link",
      linkname: "l",
    }],
    entry: "h",
    rule: /is a symbolic link/,
  },
  {
    what: "a hard link to a directory",
    specs: [{ name: "d/", type: "directory" }, { name: "h", type: "link", linkname: "d" }],
    entry: "h",
    rule: /is a directory/,
  },
  {
    what: "a hard link to an absolute path",
    specs: [{ name: "h", type: "link", linkname: "/etc/passwd" }],
    entry: "h",
    rule: /hard link target is absolute/,
  },
  {
    what: "a hard link target with ..",
    specs: [{ name: "f", body: "x" }, { name: "d/h", type: "link", linkname: "d/../f" }],
    entry: "d/h",
    rule: /hard link target contains a "\.\."/,
  },
  {
    what: "an empty hard link target",
    specs: [{ name: "h", type: "link", linkname: "" }],
    entry: "h",
    rule: /empty target/,
  },
  {
    what: "a hard link to itself",
    specs: [{ name: "f", body: "x" }, { name: "f", type: "link", linkname: "f" }],
    entry: "f",
    rule: /itself/,
  },
  {
    what: "a hard link to a skipped entry",
    specs: [{ name: "skip/f", body: "x" }, { name: "h", type: "link", linkname: "skip/f" }],
    entry: "h",
    rule: /"skip\/f" is skipped/,
    mapName: (name) => name.startsWith("skip/") ? null : name,
  },
  {
    what: "a character device",
    specs: [{ name: "c", type: "character-device" }],
    entry: "c",
    rule: /character-device entries are not allowed/,
  },
  {
    what: "a block device",
    specs: [{ name: "b", type: "block-device" }],
    entry: "b",
    rule: /block-device entries are not allowed/,
  },
  {
    what: "a FIFO",
    specs: [{ name: "p", type: "fifo" }],
    entry: "p",
    rule: /fifo entries are not allowed/,
  },
  {
    what: "a GNU sparse file (PAX format)",
    specs: [{ name: "s", body: "x", pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0" } }],
    entry: "s",
    rule: /sparse/,
  },
];

for (const c of REJECTED) {
  Deno.test(`extractTar rejects ${c.what}`, async () => {
    await sandbox(async (dest, parent) => {
      const specs = [{ name: "first.txt", body: "ok" }, ...c.specs];
      const error = await rejection(extract(specs, dest, { mapName: c.mapName }), UnsafeEntryError);
      assert.equal(error.entry, c.entry);
      assert.match(error.rule, c.rule);
      assert.match(error.message, /^Cannot extract /);
      assert.doesNotMatch(error.message, /\n/);
      // The entry before the bad one was extracted, so extraction really ran.
      assert.equal(text(`${dest}/first.txt`), "ok");
      assert.deepEqual([...Deno.readDirSync(parent)].map((e) => e.name), ["dest"]);
    });
  });
}

Deno.test("extractTar clears setuid, setgid and sticky bits and keeps owners' access", async () => {
  await sandbox(async (dest) => {
    const big = new Uint8Array(100_000);
    await extract([
      { name: "suid", body: "x", mode: 0o4755 },
      { name: "sgid", body: "x", mode: 0o2755 },
      { name: "sticky", body: "x", mode: 0o1777 },
      { name: "readonly", body: "x", mode: 0o444 },
      { name: "none", body: "x", mode: 0o000 },
      // 0o777 shows umask (usually 022) does not interfere; big files are streamed.
      { name: "all", body: "x", mode: 0o777 },
      { name: "big-suid", body: big, mode: 0o4777 },
      { name: "big-readonly", body: big, mode: 0o400 },
      { name: "d-sticky/", type: "directory", mode: 0o1777 },
      { name: "d-readonly/", type: "directory", mode: 0o555 },
      { name: "d-readonly/f", body: "x" },
      { name: "d-none/", type: "directory", mode: 0o000 },
    ], dest);
    const modes = Object.fromEntries(
      [...Deno.readDirSync(dest)].map((e) => [e.name, mode(`${dest}/${e.name}`).toString(8)]),
    );
    assert.deepEqual(modes, {
      suid: "755",
      sgid: "755",
      sticky: "755",
      readonly: "644",
      none: "600",
      all: "755",
      "big-suid": "755",
      "big-readonly": "600",
      "d-sticky": "755",
      "d-readonly": "755",
      "d-none": "700",
    });
  });
});

Deno.test("extractTar keeps archive mtimes on files and directories", async () => {
  await sandbox(async (dest) => {
    const at = (year: number) => new Date(`${year}-06-01T12:00:00Z`);
    await extract([
      { name: "d/", type: "directory", mtime: at(2001) },
      { name: "d/small.py", body: "x", mtime: at(2002) },
      { name: "d/big.bin", body: new Uint8Array(300_000), mtime: at(2003) },
      { name: "d/e/", type: "directory", mtime: at(2004) },
      // Created after d/e's entry: the directory mtime must still win.
      { name: "d/e/late.py", body: "y", mtime: at(2005) },
      { name: "d/e/f/g.py", body: "z", mtime: at(2006) },
    ], dest);
    const mtime = (rel: string) => Deno.lstatSync(`${dest}/${rel}`).mtime?.toISOString();
    assert.equal(mtime("d"), at(2001).toISOString());
    assert.equal(mtime("d/small.py"), at(2002).toISOString());
    assert.equal(mtime("d/big.bin"), at(2003).toISOString());
    assert.equal(mtime("d/e"), at(2004).toISOString());
    assert.equal(mtime("d/e/late.py"), at(2005).toISOString());
    assert.equal(mtime("d/e/f/g.py"), at(2006).toISOString());
  });
});

Deno.test("extractTar lets a later duplicate file win without touching hard links to the earlier one", async () => {
  await sandbox(async (dest) => {
    const result = await extract([
      { name: "a", body: "one" },
      { name: "b", type: "link", linkname: "a" },
      { name: "a", body: "two", mode: 0o755 },
      { name: "c", body: "file" },
      { name: "c", type: "symlink", linkname: "a" },
      { name: "big", body: new Uint8Array(70_000) },
      { name: "big", body: new Uint8Array(80_000) },
    ], dest);
    assert.equal(text(`${dest}/a`), "two");
    assert.equal(mode(`${dest}/a`), 0o755);
    assert.equal(text(`${dest}/b`), "one");
    assert.equal(Deno.readLinkSync(`${dest}/c`), "a");
    assert.equal(Deno.statSync(`${dest}/big`).size, 80_000);
    assert.equal(result.files, 5);
  });
});

Deno.test("extractTar allows symlinks that stay inside, including chains", async () => {
  await sandbox(async (dest) => {
    await extract([
      { name: "lib/python3.12/os.py", body: "os" },
      { name: "bin/python3", type: "symlink", linkname: "python3.12" },
      { name: "bin/python3.12", body: "elf" },
      { name: "bin/lib", type: "symlink", linkname: "../lib" },
      { name: "share/os.py", type: "symlink", linkname: "../bin/lib/python3.12/os.py" },
      { name: "a/b/c/top", type: "symlink", linkname: "../../../bin/python3" },
    ], dest);
    assert.equal(text(`${dest}/share/os.py`), "os");
    assert.equal(text(`${dest}/a/b/c/top`), "elf");
    // Targets are stored normalized.
    assert.equal(Deno.readLinkSync(`${dest}/a/b/c/top`), "../../../bin/python3");
  });
});

Deno.test("extractTar enforces the entry-count limit", async () => {
  await sandbox(async (dest) => {
    const error = await rejection(
      extract([{ name: "a", body: "" }, { name: "b", body: "" }, { name: "c", body: "" }], dest, {
        limits: { maxEntries: 2 },
      }),
      UnsafeEntryError,
    );
    assert.equal(error.entry, "c");
    assert.match(error.rule, /more than 2 entries \(--max-entries\)/);
    assert.match(error.hint ?? "", /raise the limit with --max-entries/);
  });
});

Deno.test("extractTar enforces the total-size limit before writing the file", async () => {
  await sandbox(async (dest) => {
    const error = await rejection(
      extract([{ name: "a", body: "123456" }, { name: "b", body: "123456" }], dest, {
        limits: { maxTotalBytes: 10 },
      }),
      UnsafeEntryError,
    );
    assert.equal(error.entry, "b");
    assert.match(error.rule, /limit of 10 bytes in total \(--max-unpacked-size\)/);
    assert.equal(text(`${dest}/a`), "123456");
    assert.throws(() => Deno.lstatSync(`${dest}/b`), Deno.errors.NotFound);
  });
});

Deno.test("extractTar enforces the path-length limit in UTF-8 bytes, on paths and link targets", async () => {
  await sandbox(async (dest) => {
    const limits = { maxPathLength: 10 };
    await extract([{ name: "abcdefghij", body: "" }, { name: "ΩΩΩΩΩ", body: "" }], dest, {
      limits,
    });
    const long = await rejection(
      extract([{ name: "ΩΩΩΩΩΩ", body: "" }], dest, { limits }),
      UnsafeEntryError,
    );
    assert.equal(long.entry, "ΩΩΩΩΩΩ");
    assert.match(long.rule, /path is 12 bytes long, over the limit of 10 \(--max-path-length\)/);
    const link = await rejection(
      extract([{ name: "l", type: "symlink", linkname: "abcdefghijk" }], dest, { limits }),
      UnsafeEntryError,
    );
    assert.match(link.rule, /link target is 11 bytes long/);
  });
});

Deno.test("extractTar default limits fit real archives", () => {
  assert.deepEqual(DEFAULT_LIMITS, {
    maxTotalBytes: 8 * 1024 ** 3,
    maxEntries: 500_000,
    maxPathLength: 4096,
  });
});

Deno.test("extractTar reports a bad header checksum as ArchiveError naming the label", async () => {
  await sandbox(async (dest) => {
    const bytes = await tar([{ name: "a", body: "x" }, { name: "b", body: "y" }]);
    bytes[1024 + 100] ^= 1; // mode field of the second header
    const error = await rejection(extract(bytes, dest, { label: "cpython.tar.gz" }), ArchiveError);
    assert.match(error.message, /^Cannot read cpython\.tar\.gz: .*checksum/i);
    assert.ok(error.cause instanceof Error);
  });
});

Deno.test("extractTar reports a truncated body or a missing end of archive as ArchiveError", async () => {
  await sandbox(async (dest) => {
    const bytes = await tar([{ name: "a", body: new Uint8Array(5000) }]);
    const midBody = await rejection(extract(bytes.slice(0, 2048), dest), ArchiveError);
    assert.match(midBody.message, /^Cannot read test\.tar: .*truncated/);
    await Deno.remove(`${dest}/a`).catch(() => {});
    const noEnd = await rejection(extract(bytes.slice(0, 512 + 5120), dest), ArchiveError);
    assert.match(noEnd.message, /truncated/);
  });
});

Deno.test("extractTar turns an upstream stream error into ArchiveError with the cause chained", async () => {
  await sandbox(async (dest) => {
    const bytes = await tar([{ name: "a", body: new Uint8Array(100_000) }]);
    const boom = new Error("connection reset by peer\nsecond line");
    let sent = false;
    const upstream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(boom);
        controller.enqueue(bytes.slice(0, 30_000));
        sent = true;
      },
    });
    const error = await rejection(extractTar(upstream, { dest, label: "x.tar.gz" }), ArchiveError);
    assert.equal(error.message, "Cannot read x.tar.gz: connection reset by peer");
    assert.equal(error.cause, boom);
  });
});

Deno.test("extractTar reports a bad gzip CRC from DecompressionStream as ArchiveError", async () => {
  await sandbox(async (dest) => {
    const bytes = await tar([{ name: "a", body: "hello" }]);
    const gz = new Uint8Array(
      await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip")))
        .arrayBuffer(),
    );
    gz[gz.length - 8] ^= 0xff; // first byte of the CRC32 trailer
    const stream = streamOf(gz, 700).pipeThrough(new DecompressionStream("gzip"));
    const error = await rejection(extractTar(stream, { dest, label: "bad.tar.gz" }), ArchiveError);
    assert.match(error.message, /^Cannot read bad\.tar\.gz: /);
    assert.ok(error.cause !== undefined);
  });
});

Deno.test("extractTar rejects with the signal's reason when aborted before it starts", async () => {
  await sandbox(async (dest) => {
    const reason = new Error("stop");
    const bytes = await tar([{ name: "a", body: "x" }]);
    const error = await rejection(
      extractTar(streamOf(bytes, 700), { dest, signal: AbortSignal.abort(reason) }),
      Error,
    );
    assert.equal(error, reason);
  });
});

Deno.test("extractTar rejects promptly with the signal's reason while the upstream stalls", async () => {
  await sandbox(async (dest) => {
    const bytes = await tar([{ name: "a", body: new Uint8Array(100_000) }]);
    let release = () => {};
    let cancelled = false;
    let sent = false;
    const stalled = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(bytes.slice(0, 10_000));
          return;
        }
        return new Promise<void>((resolve) => release = resolve);
      },
      cancel() {
        cancelled = true;
        release();
      },
    });
    const controller = new AbortController();
    const reason = new Error("interrupted");
    const timer = setTimeout(() => controller.abort(reason), 50);
    const started = performance.now();
    try {
      const error = await rejection(
        extractTar(stalled, { dest, signal: controller.signal }),
        Error,
      );
      assert.equal(error, reason);
      assert.ok(performance.now() - started < 2000, "took too long to abort");
    } finally {
      clearTimeout(timer);
      release();
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(cancelled, "the upstream stream was not cancelled");
  });
});

Deno.test("extractTar keeps back-pressure: the source is read only a little ahead of the disk", async () => {
  await sandbox(async (dest) => {
    const size = 24 * 1024 * 1024;
    const chunk = 64 * 1024;
    const header = (await tar([{ name: "big", body: new Uint8Array(0) }])).slice(0, 512);
    // Patch the size field of the header (and its checksum) to announce `size` bytes.
    header.set(encoder.encode(size.toString(8).padStart(11, "0") + "\0"), 124);
    header.fill(0x20, 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    header.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    let produced = 0;
    let maxAhead = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced === 0) {
          controller.enqueue(header);
          produced = 1; // body bytes start after this
          return;
        }
        const body = produced - 1;
        if (body >= size) {
          controller.enqueue(new Uint8Array(1024));
          return controller.close();
        }
        let written = 0;
        try {
          written = Deno.statSync(`${dest}/big`).size;
        } catch { /* not created yet */ }
        maxAhead = Math.max(maxAhead, body - written);
        controller.enqueue(new Uint8Array(chunk));
        produced += chunk;
      },
    }, { highWaterMark: 0 });
    const result = await extractTar(source, { dest });
    assert.equal(result.bytes, size);
    assert.ok(maxAhead < 8 * 1024 * 1024, `read ${maxAhead} bytes ahead of the disk`);
  });
});

Deno.test("extractTar never follows a symlink that already exists in dest", async () => {
  // dest must start empty; this checks that even when it does not, creation is
  // exclusive and never writes through a link.
  await sandbox(async (dest, parent) => {
    const outside = `${parent}/outside`;
    await Deno.mkdir(outside);
    await Deno.symlink(`${outside}/x`, `${dest}/x`);
    await Deno.symlink(outside, `${dest}/d`);
    const file = await rejection(extract([{ name: "x", body: "evil" }], dest), UnsafeEntryError);
    assert.match(file.rule, /collides/);
    const dir = await rejection(extract([{ name: "d/y", body: "evil" }], dest), UnsafeEntryError);
    assert.match(dir.rule, /collides/);
    assert.deepEqual([...Deno.readDirSync(outside)], []);
    await Deno.remove(outside);
  });
});

Deno.test("extractTar reports file-system failures as a PyprimeError naming the path", async () => {
  await sandbox(async (dest) => {
    const missing = `${dest}/not-there`;
    const error = await rejection(extract([{ name: "a", body: "x" }], missing), PyprimeError);
    assert.match(error.message, /^Cannot write "a" in .*not-there: /);
    assert.ok(!(error instanceof UnsafeEntryError) && !(error instanceof ArchiveError));
  });
});

Deno.test("extractTar tells onPath each file's size and first 16 bytes, and each link", async () => {
  await sandbox(async (dest) => {
    const big = new Uint8Array(200_000).map((_, i) => (i * 31) % 251);
    const seen = new Map<string, WrittenPath[]>();
    await extract(
      [
        { name: "pkg/a.py", body: "x = 1\n" },
        { name: "pkg/big.bin", body: big },
        { name: "pkg/short", body: "abc" },
        { name: "pkg/hard", type: "link", linkname: "pkg/a.py" },
        // A later entry replaces a.py with a link: the last word on the path is the link.
        { name: "pkg/a.py", type: "symlink", linkname: "short" },
      ],
      dest,
      { onPath: (rel, written) => seen.set(rel, [...seen.get(rel) ?? [], written]) },
    );
    assert.deepEqual(seen.get("pkg/a.py"), [
      { kind: "file", size: 6, head: new TextEncoder().encode("x = 1\n") },
      { kind: "symlink", size: 0 },
    ]);
    assert.deepEqual(seen.get("pkg/big.bin"), [
      { kind: "file", size: 200_000, head: big.slice(0, 16) },
    ]);
    assert.deepEqual(seen.get("pkg/short")?.[0].head, new TextEncoder().encode("abc"));
    assert.deepEqual(seen.get("pkg/hard"), [{ kind: "hardlink", size: 6 }]);
  });
});
