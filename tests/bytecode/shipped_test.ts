/**
 * Which shipped `.pyc` the extraction alone can vouch for (`currentSources`): only
 * regular files with this interpreter's magic, timestamp mode and the source's mtime and
 * size, for every level asked, with no foreign or stale sibling.
 */
import assert from "node:assert/strict";
import { currentSources, type ShippedFile } from "../../src/bytecode/shipped.ts";

const MAGIC = "cb0d0d0a";
const TAG = "cpython-312";
const MTIME = new Date(1_700_000_000_000);

/** A 16-byte timestamp-mode header. */
function header(
  { magic = MAGIC, flags = 0, mtime = MTIME, size }: {
    magic?: string;
    flags?: number;
    mtime?: Date;
    size: number;
  },
): Uint8Array {
  const head = new Uint8Array(16);
  const view = new DataView(head.buffer);
  for (let i = 0; i < 4; i++) head[i] = parseInt(magic.slice(2 * i, 2 * i + 2), 16);
  view.setUint32(4, flags, true);
  view.setUint32(8, Math.trunc(mtime.getTime() / 1000), true);
  view.setUint32(12, size, true);
  return head;
}

/** A shipped source, and what the file system says of it (size, mtime). */
type Source = ShippedFile & { size: number; mtime: Date | null };
const source = (size = 100, mtime: Date | null = MTIME): Source => ({ kind: "file", size, mtime });
const pyc = (head: Uint8Array): ShippedFile => ({ kind: "file", head });

function check(shipped: Map<string, ShippedFile>, levels = [0], changed: string[] = []) {
  // The sources' stat comes from the map here; the default is lstat of the real file.
  const stat = (path: string) => shipped.get(path.slice("/r/".length)) as Source | undefined;
  return currentSources(shipped, { root: "/r", magic: MAGIC, tag: TAG, levels, changed, stat });
}

Deno.test("currentSources vouches for a source whose .pyc has this magic, its mtime and its size", () => {
  const shipped = new Map([
    ["lib/a.py", source()],
    [`lib/__pycache__/a.${TAG}.pyc`, pyc(header({ size: 100 }))],
    ["top.py", source(7)],
    [`__pycache__/top.${TAG}.pyc`, pyc(header({ size: 7 }))],
  ]);
  assert.deepEqual(check(shipped), new Set(["/r/lib/a.py", "/r/top.py"]));
});

Deno.test("currentSources leaves a source to the worker when its .pyc is stale, hashed or foreign", () => {
  const cases: [string, ShippedFile][] = [
    ["another magic number", pyc(header({ magic: "cc0d0d0a", size: 100 }))],
    ["another size", pyc(header({ size: 101 }))],
    ["another mtime", pyc(header({ size: 100, mtime: new Date(MTIME.getTime() + 1000) }))],
    ["a hash-based .pyc", pyc(header({ flags: 1, size: 100 }))],
    ["a short header", pyc(header({ size: 100 }).slice(0, 12))],
    ["no header seen", { kind: "file" }],
    ["a link", { kind: "symlink" }],
  ];
  for (const [what, file] of cases) {
    const shipped = new Map([["a.py", source()], [`__pycache__/a.${TAG}.pyc`, file]]);
    assert.deepEqual(check(shipped), new Set(), what);
  }
  const foreign = new Map([
    ["a.py", source()],
    [`__pycache__/a.${TAG}.pyc`, pyc(header({ size: 100 }))],
    ["__pycache__/a.cpython-311.pyc", pyc(header({ size: 100 }))],
  ]);
  assert.deepEqual(
    check(foreign),
    new Set(),
    "another interpreter's .pyc is the worker's to remove",
  );
  const staleOpt = new Map([
    ["a.py", source()],
    [`__pycache__/a.${TAG}.pyc`, pyc(header({ size: 100 }))],
    [`__pycache__/a.${TAG}.opt-2.pyc`, pyc(header({ size: 99 }))],
  ]);
  assert.deepEqual(check(staleOpt), new Set(), "a stale level not asked for is still removed");
});

Deno.test("currentSources wants every level asked for, and none for a source the install changed", () => {
  const shipped = new Map([
    ["a.py", source()],
    [`__pycache__/a.${TAG}.pyc`, pyc(header({ size: 100 }))],
    [`__pycache__/a.${TAG}.opt-1.pyc`, pyc(header({ size: 100 }))],
  ]);
  assert.deepEqual(check(shipped, [0, 1]), new Set(["/r/a.py"]));
  assert.deepEqual(check(shipped, [0, 1, 2]), new Set(), "no opt-2 .pyc");
  assert.deepEqual(check(shipped, [0], ["a.py"]), new Set(), "rewritten after extraction");
  const noMtime = new Map([["a.py", source(100, null)], ...[...shipped].slice(1)]);
  assert.deepEqual(check(noMtime), new Set(), "a source whose mtime cannot be read");
});

Deno.test("currentSources judges by the source's stat on disk, not the archive's mtime", () => {
  // The archive says 2038-01-19T03:30:00Z; a file system with 32-bit times keeps 2^31 - 1.
  const late = new Date((2 ** 31 + 1000) * 1000);
  const shipped = new Map([
    ["a.py", source()],
    [`__pycache__/a.${TAG}.pyc`, pyc(header({ size: 100, mtime: late }))],
  ]);
  const judged = (mtime: Date) =>
    currentSources(shipped, {
      root: "/r",
      magic: MAGIC,
      tag: TAG,
      levels: [0],
      changed: [],
      stat: () => ({ size: 100, mtime }),
    });
  assert.deepEqual(judged(new Date((2 ** 31 - 1) * 1000)), new Set(), "clamped on disk");
  assert.deepEqual(judged(late), new Set(["/r/a.py"]), "kept as the archive said");
});

Deno.test("currentSources sends a source whose stem makes another's .pyc look foreign, and keeps that one", () => {
  // a.cpython-312.pyc is a.py's own; for a.cpython-312.py it reads as a foreign name.
  const shipped = new Map([
    ["a.py", source()],
    [`__pycache__/a.${TAG}.pyc`, pyc(header({ size: 100 }))],
    [`a.${TAG}.py`, source()],
    [`__pycache__/a.${TAG}.${TAG}.pyc`, pyc(header({ size: 100 }))],
  ]);
  assert.deepEqual(check(shipped), new Set(["/r/a.py"]));
});

Deno.test("currentSources vouches for nothing when the interpreter's magic or tag is malformed", () => {
  const shipped = new Map([["a.py", source()], [
    `__pycache__/a.${TAG}.pyc`,
    pyc(header({ size: 100 })),
  ]]);
  for (const [magic, tag] of [["", TAG], ["cb0d0d0a00", TAG], [MAGIC, ""], [MAGIC, "../x"]]) {
    assert.deepEqual(
      currentSources(shipped, { root: "/r", magic, tag, levels: [0], changed: [] }),
      new Set(),
      `${magic} ${tag}`,
    );
  }
});
