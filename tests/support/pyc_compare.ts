/**
 * Compares the `.pyc` files pyprime wrote for a tree with what a fresh single-file
 * `py_compile` run gives, file by file, and says why each one that differs does.
 *
 * "Fresh" means a process that compiled nothing before: a fork server imports
 * `py_compile` once and forks one child per source, so no child sees the interned
 * strings, caches or reference counts another file left (and the suite stays fast
 * enough to cover a whole stdlib: a fork costs ~1 ms, an interpreter start ~15 ms).
 * The children run with `PYTHONHASHSEED=0`, as pyprime's workers do.
 *
 * @module
 */

/** One `.pyc` that is not byte-identical to the fresh `py_compile` one. */
export interface PycDifference {
  /** The source, relative to the compared root. */
  path: string;
  /**
   * Why, most specific first: `code` (the code objects differ: a real bug),
   * `header`, `frozenset-sharing` (one frozenset constant shared by two code objects
   * in one file and copied in the other), `constant-sharing` (the same for another
   * tuple or string constant), `interning` (a string marshalled as interned
   * in one and not in the other: `Z`/`z`, `A`/`a`, `t`/`u`), `ref-flag` (only
   * `FLAG_REF` bits and the reference numbers they shift), `other`.
   */
  why:
    | "code"
    | "header"
    | "frozenset-sharing"
    | "constant-sharing"
    | "interning"
    | "ref-flag"
    | "other";
  /** Bytes of ours and of the fresh one. */
  sizes: [number, number];
  /** The strings whose interned flag differs, or the constants shared in only one, at most 5. */
  strings?: string[];
}

const DRIVER = String.raw`
import os, sys, json, marshal, py_compile, importlib.util
root = sys.argv[1]
tmp = sys.argv[2]
CODE = type(compile("", "", "exec"))

def shares_frozenset(code):
    seen, stack = set(), [code]
    while stack:
        for c in stack.pop().co_consts:
            if type(c) is CODE:
                stack.append(c)
            elif type(c) is frozenset:
                if id(c) in seen:
                    return True
                seen.add(id(c))
    return False

def shared(code):
    """repr of each constant (not a code object) reached twice through co_consts."""
    seen, twice, stack = {}, set(), [code]
    while stack:
        c = stack.pop()
        if type(c) is CODE:
            stack.extend(c.co_consts)
        elif type(c) in (tuple, frozenset):
            if id(c) in seen:
                twice.add(repr(c)[:60])
            else:
                seen[id(c)] = c
                stack.extend(c)
        elif type(c) in (str, bytes) and len(c) > 1:
            if id(c) in seen:
                twice.add(repr(c)[:60])
            seen[id(c)] = c
    return twice

PAIRS = {(0x5a, 0x7a), (0x41, 0x61), (0x74, 0x75)}  # Z/z A/a t/u: interned or not

def classify(ours, fresh):
    if ours[:16] != fresh[:16]:
        return "header", []
    a, b = marshal.loads(ours[16:]), marshal.loads(fresh[16:])
    if a != b:
        return "code", []
    if shares_frozenset(a) != shares_frozenset(b):
        return "frozenset-sharing", []
    sa, sb = shared(a), shared(b)
    if sa != sb:
        return "constant-sharing", sorted(set(sa) ^ set(sb))[:5]
    # The first byte that differs says why: later ones follow from it (reference
    # numbers shift once one object more or less is flagged FLAG_REF).
    i = next(i for i, (x, y) in enumerate(zip(ours, fresh)) if x != y)
    x, y = ours[i] & 0x7f, fresh[i] & 0x7f
    if (x, y) in PAIRS or (y, x) in PAIRS:
        short = x in (0x5a, 0x7a)
        n = ours[i + 1] if short else int.from_bytes(ours[i + 1:i + 5], "little")
        start = i + (2 if short else 5)
        return "interning", [ours[start:start + n].decode("utf-8", "replace")]
    if ours[i] ^ fresh[i] == 0x80:
        return "ref-flag", []
    return "other", []

out = []
sources = []
for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs if x != "__pycache__")
    sources += [os.path.join(d, f) for f in sorted(files) if f.endswith(".py")]
for n, src in enumerate(sources):
    ours_path = importlib.util.cache_from_source(src)
    if not os.path.exists(ours_path):
        continue
    ref = os.path.join(tmp, "%d.pyc" % n)
    pid = os.fork()
    if pid == 0:
        try:
            py_compile.compile(src, cfile=ref, doraise=True)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        continue  # a syntax error: pyprime reports it too, there is nothing to compare
    ours, fresh = open(ours_path, "rb").read(), open(ref, "rb").read()
    os.unlink(ref)
    if ours != fresh:
        why, strings = classify(ours, fresh)
        item = {"path": os.path.relpath(src, root), "why": why, "sizes": [len(ours), len(fresh)]}
        if strings:
            item["strings"] = strings
        out.append(item)
print(json.dumps({"compared": len(sources), "differ": out}))
`;

/**
 * Runs the comparison for every `.py` under `root` that has a level-0 `.pyc`.
 *
 * @example
 * ```ts
 * const { differ } = await comparePycs(python, stdlib);
 * ```
 */
export async function comparePycs(
  python: string,
  root: string,
): Promise<{ compared: number; differ: PycDifference[] }> {
  const tmp = await Deno.makeTempDir({ prefix: "pyprime-pyc-fresh-" });
  try {
    const out = await new Deno.Command(python, {
      args: ["-s", "-B", "-c", DRIVER, root, tmp],
      clearEnv: true,
      env: { LC_ALL: "C.UTF-8", PYTHONHASHSEED: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(`${python}: ${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(text);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
