/**
 * Builds python-build-standalone (PBS) shaped archives from a CPython that is already on
 * the machine, so integration tests and benchmarks have real interpreters to install
 * without downloading anything.
 *
 * Produces, in `<out>/<X.Y.Z>/`:
 * - `cpython-X.Y.Z+20991231-<triple>-install_only.tar.gz` and `.tar.zst`
 * - `cpython-X.Y.Z+20991231-<triple>-pgo+lto-full.tar.zst` (`python/PYTHON.json`,
 *   `python/install/…`, `python/build/…`, `python/licenses/…`)
 * - `SHA256SUMS` (`<hex>  <name>` lines, like the PBS release assets)
 *
 * Run it with `deno task fixtures [--python PATH] [--out DIR] [--scale N]`.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { createTarPacker, type TarHeader } from "modern-tar";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";

/** The fake PBS release date in every file name. */
export const BUILD_DATE = "20991231";

/** The build prefix PBS archives carry in their sysconfig data and pkg-config files. */
export const PBS_PREFIX = "/install";

/** Options of {@link buildFixtures}. */
export interface BuildFixturesOptions {
  /** Source interpreter; defaults to `PYPRIME_FIXTURE_PYTHON`, else `python3` on PATH. */
  python?: string;
  /** Output folder; one subfolder per source version is made in it. */
  outDir?: string;
  /** `N >= 1`: adds `N-1` copies of the stdlib's `.py` files to site-packages. */
  scale?: number;
  /** Receives progress lines; silent by default. */
  log?: (line: string) => void;
}

/** What {@link buildFixtures} made, with absolute paths. */
export interface FixtureSet {
  /** Full version of the source interpreter, e.g. `3.12.1`. */
  version: string;
  /** `X.Y`, e.g. `3.12`. */
  tag: string;
  /** PBS target triple, e.g. `x86_64-unknown-linux-gnu`. */
  triple: string;
  /** The folder holding the archives. */
  dir: string;
  /** The `install_only` archive, gzip. */
  gz: string;
  /** The `install_only` archive, zstd. */
  zst: string;
  /** The `pgo+lto-full` archive, zstd. */
  full: string;
  /** The `SHA256SUMS` file listing the three archives. */
  sha256sums: string;
  /** Lowercase hex sha256 of each archive, keyed by its absolute path. */
  sha256: Record<string, string>;
  /** Size in bytes of each archive, keyed by its absolute path. */
  sizes: Record<string, number>;
  /** The real interpreter binary the archives were built from. */
  pythonSource: string;
  /** The source's stdlib folder (`sysconfig.get_paths()["stdlib"]`). */
  stdlibSource: string;
  /** Which of {@link SMOKE_MODULES} the source interpreter can import. */
  modules: string[];
  /** The source's build prefix (rewritten to `/install` in the archives). */
  sourcePrefix: string;
  /** Whether the interpreter links a shared libpython (then `lib/libpythonX.Y.so*` ship). */
  shared: boolean;
  /** The `--scale` the archives were built with. */
  scale: number;
  /** Archive paths (under `python/`) whose ELF RUNPATH was made relative, and those left. */
  runpath: { patched: string[]; unpatched: string[] };
  /** Anything that did not go as a real PBS archive would, in words. */
  notes: string[];
  /** Seconds the build took (of the original build when `cached`). */
  buildSeconds: number;
  /** True when the outputs were already there and nothing was rebuilt. */
  cached: boolean;
}

/** What the source interpreter says about itself. */
interface Probe {
  executable: string;
  version: string;
  tag: string;
  abiflags: string;
  prefix: string;
  stdlib: string;
  platstdlib: string;
  include: string;
  enableShared: boolean;
  libdir: string;
  ldlibrary: string;
  instsoname: string;
  libpc: string;
  libc: string;
  machine: string;
  platform: string;
  magic: string;
  cacheTag: string;
  extSuffixes: string[];
  modules: string[];
}

/** Bytes to overwrite at a file offset while streaming the file. */
interface BytePatch {
  offset: number;
  bytes: Uint8Array;
}

/** One node of the installation tree, path relative to its root (`python/`). */
interface Node {
  path: string;
  kind: "file" | "dir" | "symlink";
  mode: number;
  mtime: Date;
  size: number;
  source?: string;
  data?: Uint8Array;
  linkname?: string;
  patches?: BytePatch[];
}

/** Stdlib modules with C parts that smoke tests import when the source has them. */
export const SMOKE_MODULES: readonly string[] = ["json", "decimal", "sqlite3", "ssl"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const PROBE_SCRIPT = `
import importlib.machinery, importlib.util, json, os, platform, sys, sysconfig
v = sysconfig.get_config_var
exe = sys.executable
if sys.prefix != sys.base_prefix:
    candidate = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
    if os.path.exists(candidate):
        exe = candidate
paths = sysconfig.get_paths()
modules = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        modules.append(name)
    except ImportError:
        pass
print(json.dumps({
    "executable": os.path.realpath(exe),
    "version": platform.python_version(),
    "tag": "%d.%d" % sys.version_info[:2],
    "abiflags": getattr(sys, "abiflags", ""),
    "prefix": v("prefix") or sys.base_prefix,
    "stdlib": paths["stdlib"],
    "platstdlib": paths["platstdlib"],
    "include": paths["include"],
    "enableShared": bool(v("Py_ENABLE_SHARED")),
    "libdir": v("LIBDIR") or "",
    "ldlibrary": v("LDLIBRARY") or "",
    "instsoname": v("INSTSONAME") or "",
    "libpc": v("LIBPC") or "",
    "libc": platform.libc_ver()[0],
    "machine": platform.machine(),
    "platform": sys.platform,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "cacheTag": sys.implementation.cache_tag,
    "extSuffixes": importlib.machinery.EXTENSION_SUFFIXES,
    "modules": modules,
}))
`;

/** Environment of every spawned interpreter: never the caller's PYTHON* variables. */
function pythonEnv(): Record<string, string> {
  return { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/" };
}

async function probePython(python: string): Promise<Probe> {
  const out = await new Deno.Command(python, {
    args: ["-I", "-B", "-c", PROBE_SCRIPT, ...SMOKE_MODULES],
    clearEnv: true,
    env: pythonEnv(),
    stdin: "null",
  }).output();
  if (!out.success) {
    throw new Error(`Cannot probe ${python}: ${decoder.decode(out.stderr).trim()}`);
  }
  return JSON.parse(decoder.decode(out.stdout));
}

// ---------------------------------------------------------------------------------------
// ELF: find the dynamic entries, so the RUNPATH string can be rewritten in place.

interface ElfDynamic {
  needed: string[];
  runpath?: { key: "RUNPATH" | "RPATH"; value: string; offset: number };
}

async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(buf.subarray(done));
    if (n === null) break;
    done += n;
  }
  return buf.subarray(0, done);
}

/** Reads NEEDED and RUNPATH/RPATH of a 64-bit little-endian ELF; undefined for anything else. */
async function readElfDynamic(path: string): Promise<ElfDynamic | undefined> {
  using file = await Deno.open(path);
  const head = await readAt(file, 0, 64);
  const isElf64le = head.length === 64 && head[0] === 0x7f && head[1] === 0x45 &&
    head[2] === 0x4c && head[3] === 0x46 && head[4] === 2 && head[5] === 1;
  if (!isElf64le) return undefined;
  const h = new DataView(head.buffer, head.byteOffset);
  const phoff = Number(h.getBigUint64(0x20, true));
  const phentsize = h.getUint16(0x36, true);
  const phnum = h.getUint16(0x38, true);
  const ph = await readAt(file, phoff, phentsize * phnum);
  const pv = new DataView(ph.buffer, ph.byteOffset, ph.length);
  const loads: { offset: number; vaddr: number; filesz: number }[] = [];
  let dynamic: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    const type = pv.getUint32(at, true);
    const offset = Number(pv.getBigUint64(at + 8, true));
    const vaddr = Number(pv.getBigUint64(at + 16, true));
    const filesz = Number(pv.getBigUint64(at + 32, true));
    if (type === 1) loads.push({ offset, vaddr, filesz });
    if (type === 2) dynamic = { offset, size: filesz };
  }
  if (!dynamic) return { needed: [] };
  const dyn = await readAt(file, dynamic.offset, dynamic.size);
  const dv = new DataView(dyn.buffer, dyn.byteOffset, dyn.length);
  let strtab = 0;
  let strsz = 0;
  const neededAt: number[] = [];
  let runpathAt: { key: "RUNPATH" | "RPATH"; at: number } | undefined;
  for (let at = 0; at + 16 <= dyn.length; at += 16) {
    const tag = Number(dv.getBigInt64(at, true));
    const val = Number(dv.getBigUint64(at + 8, true));
    if (tag === 0) break;
    if (tag === 5) strtab = val;
    if (tag === 10) strsz = val;
    if (tag === 1) neededAt.push(val);
    if (tag === 29) runpathAt = { key: "RUNPATH", at: val };
    if (tag === 15 && !runpathAt) runpathAt = { key: "RPATH", at: val };
  }
  const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
  if (!seg || strsz === 0) return { needed: [] };
  const strOffset = strtab - seg.vaddr + seg.offset;
  const strings = await readAt(file, strOffset, strsz);
  const str = (at: number) => decoder.decode(strings.subarray(at, strings.indexOf(0, at)));
  return {
    needed: neededAt.map(str),
    runpath: runpathAt &&
      { key: runpathAt.key, value: str(runpathAt.at), offset: strOffset + runpathAt.at },
  };
}

/**
 * Plans the in-place rewrite of `oldDir` to `newDir` in the RUNPATH of `path`. The
 * dynamic string table cannot grow, so the new (shorter) string is NUL padded.
 */
async function planRunpathPatch(
  path: string,
  oldDir: string,
  newDir: string,
): Promise<{ patch?: BytePatch; reason?: string }> {
  const elf = await readElfDynamic(path);
  if (!elf?.runpath) return {};
  const { value, offset, key } = elf.runpath;
  const parts = value.split(":");
  if (!parts.includes(oldDir)) return { reason: `${key} ${value} does not name ${oldDir}` };
  const replaced = parts.map((p) => (p === oldDir ? newDir : p)).join(":");
  const bytes = encoder.encode(replaced);
  if (bytes.length > value.length) return { reason: `${key} ${replaced} is longer than ${value}` };
  const padded = new Uint8Array(value.length + 1);
  padded.set(bytes);
  return { patch: { offset, bytes: padded } };
}

// ---------------------------------------------------------------------------------------
// The installation tree, as PBS `install_only` lays it out under `python/`.

/** Directory names never shipped from the stdlib; tests are what PBS-like slim builds drop. */
const SKIP_DIRS = new Set(["__pycache__", "test", "tests", "idle_test"]);
/** Debian marks its stdlib externally managed; a relocatable build must not inherit that. */
const SKIP_FILES = new Set(["EXTERNALLY-MANAGED"]);
const SITE_README = "This directory exists so that 3rd party packages can be installed\n" +
  "here.  Read the source for site.py for more details.\n";

/** `pythonX.Y`, or `pythonX.Yt` for a free-threaded build: the binary and the stdlib folder. */
function pythonName(probe: Probe): string {
  return `python${probe.tag}${probe.abiflags.includes("t") ? "t" : ""}`;
}

function fileMode(info: Deno.FileInfo): number {
  return (info.mode ?? 0o644) & 0o7777;
}

function dirNode(path: string, mtime: Date, mode = 0o755): Node {
  return { path, kind: "dir", mode, mtime, size: 0 };
}

/**
 * A copied file keeps its real mtime, as in PBS archives: a `.pyc` records its source's
 * mtime, so bytecode compiled at install time must see the mtime the file will keep.
 */
function fileNode(path: string, source: string, info: Deno.FileInfo): Node {
  return {
    path,
    kind: "file",
    mode: fileMode(info),
    mtime: info.mtime ?? new Date(0),
    size: info.size,
    source,
  };
}

function dataNode(path: string, data: Uint8Array, mtime: Date, mode = 0o644): Node {
  return { path, kind: "file", mode, mtime, size: data.length, data };
}

interface WalkOptions {
  /** Returns false to leave out `rel` (relative to the walk root) and everything below it. */
  keep(rel: string, name: string, isDir: boolean): boolean;
  notes: string[];
}

/** Copies `src` to `dest` recursively as nodes; symlinks that leave `src` are followed. */
async function walk(src: string, dest: string, options: WalkOptions, out: Node[], rel = "") {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(src, rel))) names.push(e.name);
  names.sort();
  for (const name of names) {
    const relPath = rel ? `${rel}/${name}` : name;
    const abs = join(src, relPath);
    const to = `${dest}/${relPath}`;
    let info = await Deno.lstat(abs);
    if (!options.keep(relPath, name, info.isDirectory)) continue;
    if (info.isSymlink) {
      const target = await Deno.readLink(abs);
      const inside = !isAbsolute(target) &&
        !relative(src, resolve(dirname(abs), target)).startsWith("..");
      if (inside) {
        out.push({
          path: to,
          kind: "symlink",
          mode: 0o777,
          mtime: info.mtime!,
          size: 0,
          linkname: target,
        });
        continue;
      }
      try {
        info = await Deno.stat(abs);
      } catch {
        options.notes.push(`skipped broken symlink ${abs}`);
        continue;
      }
      if (!info.isFile) {
        options.notes.push(`skipped symlink to a non-file ${abs}`);
        continue;
      }
      out.push(fileNode(to, await Deno.realPath(abs), info));
    } else if (info.isDirectory) {
      out.push(dirNode(to, info.mtime!, fileMode(info)));
      await walk(src, dest, options, out, relPath);
    } else if (info.isFile) {
      out.push(fileNode(to, abs, info));
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Replaces the build prefix with `/install`, only where a whole path component ends. */
function withPbsPrefix(text: string, prefix: string): string {
  if (prefix === PBS_PREFIX || prefix === "/" || prefix === "") return text;
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return text.replace(new RegExp(`${escaped}(?![\\w.+-])`, "g"), PBS_PREFIX);
}

interface Tree {
  nodes: Node[];
  shared: boolean;
  runpath: { patched: string[]; unpatched: string[] };
  notes: string[];
}

async function interpreterNodes(probe: Probe, tree: Tree, exeName: string) {
  const info = await Deno.stat(probe.executable);
  const exe = fileNode(`bin/${exeName}`, probe.executable, info);
  const elf = await readElfDynamic(probe.executable);
  tree.shared = elf ? elf.needed.some((n) => n.startsWith("libpython")) : probe.enableShared;
  tree.nodes.push(
    dirNode("bin", info.mtime!),
    exe,
    {
      path: "bin/python3",
      kind: "symlink",
      mode: 0o777,
      mtime: info.mtime!,
      size: 0,
      linkname: exeName,
    },
    {
      path: "bin/python",
      kind: "symlink",
      mode: 0o777,
      mtime: info.mtime!,
      size: 0,
      linkname: exeName,
    },
  );
  await addRunpathPatch(exe, probe, "$ORIGIN/../lib", tree, true);
}

async function addRunpathPatch(
  node: Node,
  probe: Probe,
  newDir: string,
  tree: Tree,
  required: boolean,
) {
  if (!node.source || !probe.libdir) return;
  const { patch, reason } = await planRunpathPatch(node.source, probe.libdir, newDir);
  if (patch) {
    node.patches = [...(node.patches ?? []), patch];
    tree.runpath.patched.push(`python/${node.path}`);
  } else if (reason) {
    tree.runpath.unpatched.push(`python/${node.path}`);
    if (required) tree.notes.push(`python/${node.path}: RUNPATH left as is: ${reason}`);
  }
}

async function libpythonNodes(probe: Probe, tree: Tree) {
  if (!tree.shared) return;
  const soname = join(probe.libdir, probe.instsoname);
  if (!probe.instsoname || !(await exists(soname))) {
    tree.notes.push(`shared build but ${soname} is missing; no libpython shipped`);
    tree.shared = false;
    return;
  }
  const info = await Deno.stat(soname);
  const lib = fileNode(`lib/${probe.instsoname}`, await Deno.realPath(soname), info);
  tree.nodes.push(lib);
  await addRunpathPatch(lib, probe, "$ORIGIN/../lib", tree, true);
  if (probe.ldlibrary && probe.ldlibrary !== probe.instsoname) {
    tree.nodes.push({
      path: `lib/${probe.ldlibrary}`,
      kind: "symlink",
      mode: 0o777,
      mtime: info.mtime!,
      size: 0,
      linkname: probe.instsoname,
    });
  }
  const stable = join(probe.libdir, "libpython3.so");
  if (await exists(stable)) {
    const node = fileNode(
      "lib/libpython3.so",
      await Deno.realPath(stable),
      await Deno.stat(stable),
    );
    tree.nodes.push(node);
    await addRunpathPatch(node, probe, "$ORIGIN/../lib", tree, false);
  }
}

async function stdlibNodes(probe: Probe, tree: Tree) {
  const lib = `lib/${pythonName(probe)}`;
  const start = tree.nodes.length;
  const keep = (rel: string, name: string, isDir: boolean) => {
    if (isDir) return !SKIP_DIRS.has(name) && rel !== "site-packages" && rel !== "dist-packages";
    if (SKIP_FILES.has(name) || name.endsWith(".pyc") || name.endsWith(".pyo")) return false;
    return !(rel.startsWith("config-") && name.endsWith(".a"));
  };
  const info = await Deno.stat(probe.stdlib);
  tree.nodes.push(dirNode(lib, info.mtime!, fileMode(info)));
  await walk(probe.stdlib, lib, { keep, notes: tree.notes }, tree.nodes);
  const dynload = join(probe.platstdlib, "lib-dynload");
  if (resolve(probe.platstdlib) !== resolve(probe.stdlib) && (await exists(dynload))) {
    const d = await Deno.stat(dynload);
    tree.nodes.push(dirNode(`${lib}/lib-dynload`, d.mtime!, fileMode(d)));
    await walk(dynload, `${lib}/lib-dynload`, { keep, notes: tree.notes }, tree.nodes);
  }
  await siteReadme(probe, lib, tree);
  for (const node of tree.nodes.slice(start)) {
    if (node.kind !== "file" || !node.source) continue;
    if (node.path.startsWith(`${lib}/lib-dynload/`) && node.path.endsWith(".so")) {
      await addRunpathPatch(node, probe, "$ORIGIN/../..", tree, false);
    }
    const name = basename(node.path);
    const isConfig = (name.startsWith("_sysconfigdata_") && name.endsWith(".py") &&
      dirname(node.path) === lib) ||
      (name === "Makefile" && dirname(node.path).startsWith(`${lib}/config-`));
    if (isConfig) await rewriteToPbsPrefix(node, probe.prefix);
  }
}

async function siteReadme(probe: Probe, lib: string, tree: Tree) {
  const site = join(probe.stdlib, "site-packages");
  const readme = join(site, "README.txt");
  const mtime = (await Deno.stat(probe.stdlib)).mtime!;
  tree.nodes.push(
    dirNode(`${lib}/site-packages`, (await exists(site)) ? (await Deno.stat(site)).mtime! : mtime),
  );
  if (await exists(readme)) {
    tree.nodes.push(fileNode(`${lib}/site-packages/README.txt`, readme, await Deno.stat(readme)));
  } else {
    tree.nodes.push(
      dataNode(`${lib}/site-packages/README.txt`, encoder.encode(SITE_README), mtime),
    );
  }
}

async function rewriteToPbsPrefix(node: Node, prefix: string) {
  const text = await Deno.readTextFile(node.source!);
  const data = encoder.encode(withPbsPrefix(text, prefix));
  node.data = data;
  node.size = data.length;
  delete node.source;
}

async function includeNodes(probe: Probe, tree: Tree) {
  if (!probe.include || !(await exists(probe.include))) {
    tree.notes.push(`no headers at ${probe.include}`);
    return;
  }
  const parent = await Deno.stat(dirname(probe.include));
  const info = await Deno.stat(probe.include);
  const dest = `include/${basename(probe.include)}`;
  tree.nodes.push(dirNode("include", parent.mtime!), dirNode(dest, info.mtime!, fileMode(info)));
  await walk(probe.include, dest, { keep: () => true, notes: tree.notes }, tree.nodes);
}

async function pkgconfigNodes(probe: Probe, tree: Tree) {
  if (!probe.libpc || !(await exists(probe.libpc))) return;
  const names: string[] = [];
  for await (const e of Deno.readDir(probe.libpc)) {
    if (/^python.*\.pc$/.test(e.name)) names.push(e.name);
  }
  if (names.length === 0) return;
  const dir = await Deno.stat(probe.libpc);
  tree.nodes.push(dirNode("lib/pkgconfig", dir.mtime!, fileMode(dir)));
  for (const name of names.sort()) {
    const abs = join(probe.libpc, name);
    const info = await Deno.stat(abs);
    if (!info.isFile) continue;
    const node = fileNode(`lib/pkgconfig/${name}`, abs, info);
    await rewriteToPbsPrefix(node, probe.prefix);
    tree.nodes.push(node);
  }
}

/**
 * `N-1` copies of the installation in site-packages, so benchmarks can vary archive size.
 * The stdlib's `.py` files keep their layout (`pyprime_scale_<k>/os.py`, so bytecode work
 * grows too); every other file (libpython, extension modules, headers) goes under
 * `pyprime_scale_<k>/_ballast/`, because `.py` files alone are a fifth of the archive and
 * would not make it N times larger.
 */
function scaleNodes(tree: Tree, lib: string, scale: number) {
  const site = `${lib}/site-packages`;
  const files = tree.nodes.filter((n) => n.kind === "file" && !n.path.startsWith(`${site}/`));
  const dirs = new Map<string, Date>();
  const copies: Node[] = [];
  for (let k = 1; k < scale; k++) {
    const root = `${site}/pyprime_scale_${k}`;
    for (const n of files) {
      const isStdlibPy = n.path.startsWith(`${lib}/`) && n.path.endsWith(".py");
      const path = isStdlibPy
        ? `${root}/${n.path.slice(lib.length + 1)}`
        : `${root}/_ballast/${n.path}`;
      copies.push({ ...n, path });
      for (let d = dirname(path); d !== site && !dirs.has(d); d = dirname(d)) dirs.set(d, n.mtime);
    }
  }
  for (const [path, mtime] of dirs) tree.nodes.push(dirNode(path, mtime));
  tree.nodes.push(...copies);
}

async function collectTree(probe: Probe, scale: number): Promise<Tree> {
  const tree: Tree = {
    nodes: [],
    shared: false,
    runpath: { patched: [], unpatched: [] },
    notes: [],
  };
  const exeName = pythonName(probe);
  const mtime = (await Deno.stat(probe.executable)).mtime!;
  tree.nodes.push(dirNode("", mtime), dirNode("lib", mtime));
  await interpreterNodes(probe, tree, exeName);
  await libpythonNodes(probe, tree);
  await stdlibNodes(probe, tree);
  await includeNodes(probe, tree);
  await pkgconfigNodes(probe, tree);
  scaleNodes(tree, `lib/${pythonName(probe)}`, scale);
  return tree;
}

// ---------------------------------------------------------------------------------------
// The `full` layout: PYTHON.json + install/ + build/ + licenses/.

function pythonJson(probe: Probe, triple: string, exeName: string, shared: boolean): string {
  const lib = `install/lib/python${probe.tag}`;
  const nodot = probe.tag.replace(".", "");
  const doc = {
    version: "8",
    target_triple: triple,
    optimizations: "pgo+lto",
    python_tag: `cp${nodot}`,
    python_abi_tag: probe.abiflags,
    python_bytecode_magic_number: probe.magic,
    python_exe: `install/bin/${exeName}`,
    python_implementation_cache_tag: probe.cacheTag,
    python_implementation_name: "cpython",
    python_major_minor_version: probe.tag,
    python_version: probe.version,
    python_platform_tag: `${probe.platform}-${probe.machine}`,
    python_paths: {
      data: "install",
      include: `install/include/python${probe.tag}`,
      platinclude: `install/include/python${probe.tag}`,
      platlib: `${lib}/site-packages`,
      platstdlib: lib,
      purelib: `${lib}/site-packages`,
      scripts: "install/bin",
      stdlib: lib,
    },
    python_suffixes: { extension: probe.extSuffixes, source: [".py"], bytecode: [".pyc"] },
    python_stdlib_test_packages: [],
    libpython_link_mode: shared ? "shared" : "static",
    licenses: ["Python-2.0", "CNRI-Python"],
    license_path: "licenses/LICENSE.cpython.txt",
    run_tests: "build/run_tests.py",
    build_info: { core: { objs: [], links: [] }, extensions: {} },
    pyprime_fixture: true,
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

async function fullNodes(probe: Probe, tree: Tree, triple: string): Promise<Node[]> {
  const mtime = (await Deno.stat(probe.executable)).mtime!;
  const exeName = pythonName(probe);
  const lib = `lib/${pythonName(probe)}`;
  const licenseSrc = join(probe.stdlib, "LICENSE.txt");
  const license = (await exists(licenseSrc))
    ? await Deno.readFile(licenseSrc)
    : encoder.encode("PSF License Agreement\n");
  const nodes: Node[] = [
    dirNode("", mtime),
    dataNode("PYTHON.json", encoder.encode(pythonJson(probe, triple, exeName, tree.shared)), mtime),
    dirNode("build", mtime),
    dataNode("build/run_tests.py", encoder.encode("import sys\nsys.exit(0)\n"), mtime),
    dirNode("build/lib", mtime),
    dataNode("build/lib/libfixture.a", encoder.encode("!<arch>\n"), mtime),
    dirNode("licenses", mtime),
    dataNode("licenses/LICENSE.cpython.txt", license, mtime),
    dataNode("licenses/LICENSE.fixture.txt", encoder.encode("Fixture build by pyprime.\n"), mtime),
    ...tree.nodes.map((n) => ({ ...n, path: n.path ? `install/${n.path}` : "install" })),
    dirNode(`install/${lib}/badsyntax_fixture`, mtime),
    // A stdlib file that cannot compile, like lib2to3's test data, so the installer's
    // bytecode step is exercised on a failure it must tolerate.
    dataNode(
      `install/${lib}/badsyntax_fixture/bad_syntax.py`,
      encoder.encode("def broken(:\n    return 1 +\n"),
      mtime,
    ),
  ];
  return nodes;
}

// ---------------------------------------------------------------------------------------
// Writing: one tar stream fanned out to compressors, each hashed while written.

interface Sink {
  stream: Writable;
  done: Promise<{ sha256: string; bytes: number }>;
}

function createSink(path: string, kind: "gzip" | "zstd"): Sink {
  const stream = kind === "gzip" ? zlib.createGzip({ level: 6 }) : zlib.createZstdCompress({
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: 3,
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
    },
  });
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const done = pipeline(stream, tap, createWriteStream(path)).then(() => ({
    sha256: hash.digest("hex"),
    bytes,
  }));
  done.catch(() => {});
  return { stream, done };
}

/** Writes each chunk to every sink, waiting for the slowest: memory stays bounded. */
function fanOut(sinks: Sink[]): WritableStream<Uint8Array> {
  const failed = Promise.race(sinks.map((s) => s.done.then(() => new Promise<never>(() => {}))));
  failed.catch(() => {});
  return new WritableStream({
    async write(chunk) {
      const waits = [];
      for (const s of sinks) if (!s.stream.write(chunk)) waits.push(once(s.stream, "drain"));
      if (waits.length) await Promise.race([Promise.all(waits), failed]);
    },
    async close() {
      for (const s of sinks) s.stream.end();
      await Promise.all(sinks.map((s) => s.done));
    },
    abort(reason) {
      for (const s of sinks) {
        s.stream.destroy(reason instanceof Error ? reason : new Error(String(reason)));
      }
    },
  });
}

/** Merges the packer's many small chunks (512-byte headers) into big compressor calls. */
function coalesce(size = 512 * 1024): TransformStream<Uint8Array, Uint8Array> {
  let buf = new Uint8Array(size);
  let used = 0;
  return new TransformStream({
    transform(chunk, ctl) {
      if (used + chunk.length > size && used > 0) {
        ctl.enqueue(buf.slice(0, used));
        used = 0;
      }
      if (chunk.length >= size) ctl.enqueue(chunk);
      else {
        buf.set(chunk, used);
        used += chunk.length;
      }
    },
    flush(ctl) {
      if (used > 0) ctl.enqueue(buf.slice(0, used));
      buf = new Uint8Array(0);
    },
  });
}

/** Applies byte patches to a file stream and checks the file did not change size. */
function patchAndCheck(node: Node): TransformStream<Uint8Array, Uint8Array> {
  let pos = 0;
  const patches = node.patches ?? [];
  return new TransformStream({
    transform(chunk, ctl) {
      const end = pos + chunk.length;
      let out = chunk;
      for (const p of patches) {
        const from = Math.max(p.offset, pos);
        const to = Math.min(p.offset + p.bytes.length, end);
        if (from >= to) continue;
        if (out === chunk) out = chunk.slice();
        out.set(p.bytes.subarray(from - p.offset, to - p.offset), from - pos);
      }
      pos = end;
      if (pos > node.size) throw new Error(`Cannot pack ${node.source}: it grew while reading`);
      ctl.enqueue(out);
    },
    flush() {
      if (pos !== node.size) throw new Error(`Cannot pack ${node.source}: it shrank while reading`);
    },
  });
}

function tarHeader(name: string, node: Node): TarHeader {
  const base = { mode: node.mode, mtime: node.mtime, uid: 0, gid: 0 };
  if (node.kind === "dir") return { ...base, name: `${name}/`, type: "directory", size: 0 };
  if (node.kind === "symlink") {
    return { ...base, name, type: "symlink", size: 0, linkname: node.linkname };
  }
  return { ...base, name, type: "file", size: node.size };
}

async function writeEntry(
  controller: ReturnType<typeof createTarPacker>["controller"],
  name: string,
  node: Node,
) {
  const body = controller.add(tarHeader(name, node));
  if (node.kind !== "file" || node.size === 0) return await body.close();
  if (node.data) {
    const w = body.getWriter();
    await w.write(node.data);
    return await w.close();
  }
  const file = await Deno.open(node.source!);
  await file.readable.pipeThrough(patchAndCheck(node)).pipeTo(body);
}

/** Writes `nodes` (sorted by path) as one tar under `top/`, compressed into every sink. */
async function writeTar(top: string, nodes: Node[], sinks: Sink[]) {
  // Sorted as the entry names read, a folder with its trailing slash: "mimalloc.h" comes
  // before "mimalloc/", which a sort on bare paths gets the other way round.
  const name = (n: Node) => n.kind === "dir" && n.path ? `${n.path}/` : n.path;
  const sorted = [...nodes].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
  const { readable, controller } = createTarPacker();
  const done = readable.pipeThrough(coalesce()).pipeTo(fanOut(sinks));
  try {
    for (const node of sorted) {
      await writeEntry(controller, node.path ? `${top}/${node.path}` : top, node);
    }
    controller.finalize();
  } catch (err) {
    controller.error(err);
    await done.catch(() => {});
    throw err;
  }
  await done;
}

// ---------------------------------------------------------------------------------------
// Naming, caching, and the build itself.

function tripleOf(probe: Probe): string {
  const arch = probe.machine === "arm64" ? "aarch64" : probe.machine;
  if (probe.platform === "darwin") return `${arch}-apple-darwin`;
  return `${arch}-unknown-linux-${probe.libc === "glibc" ? "gnu" : "musl"}`;
}

interface Names {
  gz: string;
  zst: string;
  full: string;
  sums: string;
  stamp: string;
}

function namesOf(probe: Probe, triple: string, scale: number): Names {
  const suffix = scale > 1 ? `-scale${scale}` : "";
  const base = `cpython-${probe.version}+${BUILD_DATE}-${triple}`;
  return {
    gz: `${base}-install_only${suffix}.tar.gz`,
    zst: `${base}-install_only${suffix}.tar.zst`,
    full: `${base}-pgo+lto-full${suffix}.tar.zst`,
    sums: `SHA256SUMS${suffix}`,
    stamp: `.stamp${suffix}.json`,
  };
}

/** Identifies the inputs: the script's own text and the source interpreter's files. */
async function stampKey(probe: Probe, scale: number): Promise<string> {
  const self = new URL(import.meta.url);
  const script = self.protocol === "file:" ? await Deno.readFile(self) : encoder.encode(self.href);
  const exe = await Deno.stat(probe.executable);
  const stdlib = await Deno.stat(probe.stdlib);
  const parts = [
    createHash("sha256").update(script).digest("hex"),
    probe.executable,
    exe.size,
    exe.mtime?.getTime(),
    probe.stdlib,
    stdlib.mtime?.getTime(),
    probe.version,
    scale,
  ];
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

async function readCached(dir: string, names: Names, key: string): Promise<FixtureSet | undefined> {
  try {
    const stamp = JSON.parse(await Deno.readTextFile(join(dir, names.stamp)));
    if (stamp.key !== key) return undefined;
    const set: FixtureSet = stamp.set;
    for (const [path, size] of Object.entries(set.sizes)) {
      if ((await Deno.stat(path)).size !== size) return undefined;
    }
    return { ...set, cached: true };
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, data: string) {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, data);
  await Deno.rename(tmp, path);
}

function resolvePythonArg(python?: string): string {
  return python ?? Deno.env.get("PYPRIME_FIXTURE_PYTHON") ?? "python3";
}

/**
 * Builds (or reuses) the fixture archives of one source interpreter.
 *
 * Safe to run concurrently: every output is written under a temporary name in the same
 * folder and renamed into place, and a stamp written last marks the set complete.
 *
 * @example Build the default set
 * ```ts
 * const set = await buildFixtures({ outDir: ".cache/fixtures" });
 * console.log(set.gz, set.sha256[set.gz]);
 * ```
 */
export async function buildFixtures(options: BuildFixturesOptions = {}): Promise<FixtureSet> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const scale = options.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1) {
    throw new RangeError(`--scale must be an integer >= 1, got ${scale}`);
  }
  const probe = await probePython(resolvePythonArg(options.python));
  const triple = tripleOf(probe);
  const dir = resolve(options.outDir ?? ".cache/fixtures", probe.version);
  const names = namesOf(probe, triple, scale);
  await Deno.mkdir(dir, { recursive: true });
  const key = await stampKey(probe, scale);
  const cached = await readCached(dir, names, key);
  if (cached) {
    log(`fixtures for ${probe.executable} are up to date in ${dir}`);
    return cached;
  }
  log(`building fixtures from ${probe.executable} (${probe.version}) into ${dir}`);
  const tree = await collectTree(probe, scale);
  const full = await fullNodes(probe, tree, triple);
  const paths = { gz: join(dir, names.gz), zst: join(dir, names.zst), full: join(dir, names.full) };
  const tmp = (p: string) => `${dirname(p)}/.${basename(p)}.tmp-${Deno.pid}-${crypto.randomUUID()}`;
  const tmps = { gz: tmp(paths.gz), zst: tmp(paths.zst), full: tmp(paths.full) };
  const sinks = {
    gz: createSink(tmps.gz, "gzip"),
    zst: createSink(tmps.zst, "zstd"),
    full: createSink(tmps.full, "zstd"),
  };
  try {
    await Promise.all([
      writeTar("python", tree.nodes, [sinks.gz, sinks.zst]),
      writeTar("python", full, [sinks.full]),
    ]);
    const results = {
      gz: await sinks.gz.done,
      zst: await sinks.zst.done,
      full: await sinks.full.done,
    };
    for (const k of ["gz", "zst", "full"] as const) await Deno.rename(tmps[k], paths[k]);
    const sha256: Record<string, string> = {};
    const sizes: Record<string, number> = {};
    for (const k of ["gz", "zst", "full"] as const) {
      sha256[paths[k]] = results[k].sha256;
      sizes[paths[k]] = results[k].bytes;
    }
    const sums = (["full", "gz", "zst"] as const)
      .map((k) => `${results[k].sha256}  ${basename(paths[k])}\n`)
      .sort((a, b) => a.slice(66).localeCompare(b.slice(66)))
      .join("");
    await writeAtomic(join(dir, names.sums), sums);
    const set: FixtureSet = {
      version: probe.version,
      tag: probe.tag,
      triple,
      dir,
      ...paths,
      sha256sums: join(dir, names.sums),
      sha256,
      sizes,
      pythonSource: probe.executable,
      stdlibSource: probe.stdlib,
      modules: probe.modules,
      sourcePrefix: probe.prefix,
      shared: tree.shared,
      scale,
      runpath: tree.runpath,
      notes: tree.notes,
      buildSeconds: Math.round((performance.now() - started) / 10) / 100,
      cached: false,
    };
    await writeAtomic(join(dir, names.stamp), JSON.stringify({ key, set }, null, 2) + "\n");
    log(`built in ${set.buildSeconds}s`);
    return set;
  } finally {
    for (const t of Object.values(tmps)) await Deno.remove(t).catch(() => {});
  }
}

function parseArgs(args: string[]): BuildFixturesOptions & { json?: boolean } {
  const options: BuildFixturesOptions & { json?: boolean } = {};
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => inline ?? args[++i];
    if (flag === "--python") options.python = value();
    else if (flag === "--out") options.outDir = value();
    else if (flag === "--scale") options.scale = Number(value());
    else if (flag === "--json") options.json = true;
    else if (flag === "--help" || flag === "-h") {
      console.log("usage: build_fixtures.ts [--python PATH] [--out DIR] [--scale N] [--json]");
      Deno.exit(0);
    } else throw new Error(`unknown argument ${args[i]}`);
  }
  return options;
}

if (import.meta.main) {
  try {
    const { json, ...options } = parseArgs(Deno.args);
    const set = await buildFixtures({ ...options, log: (l) => console.error(l) });
    console.error(
      `CPython ${set.version} from ${set.pythonSource}${set.cached ? " (cached)" : ""}:`,
    );
    for (const path of [set.gz, set.zst, set.full]) {
      console.error(`${(set.sizes[path] / 1048576).toFixed(1).padStart(7)} MiB  ${path}`);
    }
    for (const note of set.notes) console.error(`note: ${note}`);
    // The whole description only on request: scripts read it, people read the lines above.
    if (json) console.log(JSON.stringify(set, null, 2));
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
