/**
 * Builds a real CPython of any minor Debian packages (`python3.X-minimal`,
 * `libpython3.X-minimal`, `libpython3.X-stdlib`, `libpython3.X-dev`) as a PBS
 * `install_only`-shaped tree, so tests can use interpreters this machine does not have
 * (3.14 and 3.15 from `sid`, or two patch releases of one minor from two suites).
 *
 * The machine's apt configuration is never changed: a private sources list naming the
 * suite (on the mirror the machine's own sources use), private state and cache dirs and
 * an empty dpkg status are passed to `apt-get update` / `apt-get download`, and the
 * packages are unpacked with `dpkg -x`. The binaries need a newer glibc than the host
 * may have, so the suite's `libc6` and the libraries the interpreter and `lib-dynload`
 * need (their NEEDED entries, recursively) go to a support folder, and `patchelf` points
 * the interpreter's ELF interpreter at that folder's loader and the RUNPATHs at it.
 *
 * Signatures: apt checks the suite's `InRelease` against the host's
 * `debian-archive-keyring.gpg`. When that keyring lacks the suite's keys, the `stable`
 * suite (signed with keys the host knows) is used to fetch the current
 * `debian-archive-keyring` package, whose keyring then verifies the suite. Nothing is
 * ever marked `trusted=yes`.
 *
 * Downloads and results live outside the repo, in
 * `${XDG_CACHE_HOME:-~/.cache}/pyprime-fixtures/debian/<suite>/`, keyed by the package
 * versions and this file's text; a lock file serializes callers and a build is made in a
 * temporary folder and renamed into place.
 *
 * Run it with `deno run -A scripts/debian_python.ts [--suite=sid] 3.14 3.15`.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";

/** Options of {@link debianPython}. */
export interface DebianPythonOptions {
  /** `X.Y`, e.g. `3.14`. */
  minor: string;
  /** Debian suite to take the packages from; `sid` by default. */
  suite?: string;
  /** Cache root; defaults to {@link defaultCacheDir}. */
  cacheDir?: string;
  /** Package lists older than this are refreshed with `apt-get update`; 24 by default. */
  maxListAgeHours?: number;
  /** Keyring tried first to verify the suite; the host's Debian archive keyring by default. */
  keyring?: string;
  /** Receives progress lines; silent by default. */
  log?: (line: string) => void;
}

/** What {@link debianPython} made, with absolute paths. */
export interface DebianPython {
  /** The interpreter's own version, e.g. `3.14.10`. */
  version: string;
  /** The Debian version of `python3.X-minimal`, e.g. `3.14.10-1`. */
  debVersion: string;
  /** The folder containing `python/` (the PBS `install_only` root). */
  tree: string;
  /** `<tree>/python/bin/pythonX.Y`. */
  python: string;
  /** Folder holding `lib/` with the suite's loader, libc and libraries. */
  supportDir: string;
  /** The suite the packages came from. */
  suite: string;
  /** `package=version` of every package unpacked. */
  packages: string[];
  /** Bytes of the tree and of the support folder. */
  sizes: { tree: number; support: number };
  /** Anything that differs from a real PBS archive, in words. */
  notes: string[];
  /** Seconds the original build took. */
  buildSeconds: number;
  /** True when the result was already in the cache. */
  cached: boolean;
}

/** Where downloads and builds are kept unless `cacheDir` is given. */
export function defaultCacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") || join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "pyprime-fixtures", "debian");
}

const decoder = new TextDecoder();
const HOST_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
const FALLBACK_MIRROR = "http://deb.debian.org/debian";
/** Stdlib folders and files left out, as `build_fixtures.ts` leaves them out. */
const SKIP_DIRS = new Set(["__pycache__", "test", "tests", "idle_test"]);
const SKIP_FILES = new Set(["EXTERNALLY-MANAGED"]);
const PBS_PREFIX = "/install";

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: "null",
    env: { LC_ALL: "C", DEBIAN_FRONTEND: "noninteractive" },
  }).output();
  if (!out.success) {
    const err = decoder.decode(out.stderr).trim().split("\n").filter((l) => !l.startsWith("W:"));
    throw new Error(`${cmd} ${args.slice(-3).join(" ")} failed: ${err.slice(-3).join(" | ")}`);
  }
  return decoder.decode(out.stdout);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** The entries of `dir`, none when it does not exist. */
async function list(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out;
}

/** Installs patchelf when running as root, else fails naming the package. */
async function ensurePatchelf(log: (l: string) => void) {
  if (await run("patchelf", ["--version"]).then(() => true, () => false)) return;
  if (Deno.uid() !== 0) throw new Error("patchelf is missing: install the Debian package patchelf");
  log("installing patchelf with apt-get");
  await run("apt-get", ["install", "-y", "-q", "patchelf"]).catch(async () => {
    await run("apt-get", ["update", "-q"]);
    await run("apt-get", ["install", "-y", "-q", "patchelf"]);
  });
}

/** The Debian mirror the machine's own sources name, read from its apt config. */
async function hostMirror(): Promise<string> {
  const files = ["/etc/apt/sources.list"];
  for (const e of await list("/etc/apt/sources.list.d")) {
    if (/\.(list|sources)$/.test(e.name)) files.push(`/etc/apt/sources.list.d/${e.name}`);
  }
  for (const f of files) {
    const text = await Deno.readTextFile(f).catch(() => "");
    for (const m of text.matchAll(/^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)/gm)) {
      if (/^https?:\/\/[^/]+\/(.+\/)?debian\/?$/.test(m[1])) return m[1].replace(/\/$/, "");
    }
  }
  return FALLBACK_MIRROR;
}

/** A private apt: own sources list, state, cache and an empty dpkg status. */
class PrivateApt {
  constructor(readonly dir: string, readonly suite: string, readonly arch: string) {}

  opts(): string[] {
    const d = this.dir;
    return Object.entries({
      "Dir::Etc::SourceList": `${d}/sources.list`,
      "Dir::Etc::SourceParts": `${d}/sources.list.d`,
      "Dir::Etc::Preferences": `${d}/preferences`,
      "Dir::Etc::PreferencesParts": `${d}/preferences.d`,
      "Dir::State": `${d}/state`,
      "Dir::State::Status": `${d}/status`,
      "Dir::Cache": `${d}/cache`,
      "Dir::Cache::pkgcache": "pkgcache.bin",
      "Dir::Cache::srcpkgcache": "srcpkgcache.bin",
      "APT::Architecture": this.arch,
      "APT::Architectures": this.arch,
      "Acquire::Languages": "none",
    }).flatMap(([k, v]) => ["-o", `${k}=${v}`]);
  }

  async setup(mirror: string, keyring: string) {
    for (const sub of ["sources.list.d", "preferences.d", "state/lists/partial", "cache"]) {
      await Deno.mkdir(join(this.dir, sub), { recursive: true });
    }
    if (!(await exists(`${this.dir}/status`))) await Deno.writeTextFile(`${this.dir}/status`, "");
    const line = `deb [signed-by=${keyring}] ${mirror} ${this.suite} main\n`;
    await Deno.writeTextFile(`${this.dir}/sources.list`, line);
  }

  async update(maxAgeHours: number): Promise<boolean> {
    const stamp = `${this.dir}/updated`;
    const age = await Deno.stat(stamp).then((s) => Date.now() - s.mtime!.getTime(), () => Infinity);
    if (age < maxAgeHours * 3600e3) return false;
    await run("apt-get", [...this.opts(), "-q", "update", "--error-on=any"]);
    await Deno.writeTextFile(stamp, new Date().toISOString() + "\n");
    return true;
  }

  /** `apt-cache show` paragraphs by package name; names with no package are left out. */
  async show(names: string[]): Promise<Map<string, Record<string, string>>> {
    const out = await new Deno.Command("apt-cache", {
      args: [...this.opts(), "show", "--no-all-versions", ...names],
      env: { LC_ALL: "C" },
      stdin: "null",
    }).output();
    const found = new Map<string, Record<string, string>>();
    for (const para of decoder.decode(out.stdout).split(/\n\n+/)) {
      const f: Record<string, string> = {};
      for (const m of para.matchAll(/^([\w-]+): (.*(?:\n .*)*)/gm)) f[m[1]] = m[2];
      if (f.Package && !found.has(f.Package)) found.set(f.Package, f);
    }
    return found;
  }

  /** Downloads `pkg=version` into `dir` unless the file is there; returns the file paths. */
  async download(dir: string, pkgs: Record<string, string>[]): Promise<string[]> {
    const file = (p: Record<string, string>) =>
      join(dir, `${p.Package}_${p.Version.replace(":", "%3a")}_${p.Architecture}.deb`);
    const missing = [];
    for (const p of pkgs) if (!(await exists(file(p)))) missing.push(p);
    if (missing.length) {
      const tmp = await Deno.makeTempDir({ dir, prefix: ".dl-" });
      try {
        await run("apt-get", [
          ...this.opts(),
          "-q",
          "download",
          ...missing.map((p) => `${p.Package}=${p.Version}`),
        ], { cwd: tmp });
        for (const p of missing) await Deno.rename(join(tmp, basename(file(p))), file(p));
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    }
    return pkgs.map(file);
  }
}

/** Updates the suite's lists; when the keyring cannot verify them, gets a newer one. */
async function prepareApt(apt: PrivateApt, root: string, opts: DebianPythonOptions) {
  const log = opts.log ?? (() => {});
  const mirror = await hostMirror();
  const own = join(apt.dir, "debian-archive-keyring.gpg");
  const keyring = (await exists(own)) ? own : (opts.keyring ?? HOST_KEYRING);
  await apt.setup(mirror, keyring);
  const age = opts.maxListAgeHours ?? 24;
  try {
    if (await apt.update(age)) log(`updated ${apt.suite} package lists from ${mirror}`);
    return;
  } catch (err) {
    const msg = String((err as Error).message);
    if (!/NO_PUBKEY|EXPKEYSIG|signature|not signed|is not valid/i.test(msg) || keyring === own) {
      if (await exists(join(apt.dir, "updated"))) return log(`using old lists: ${msg}`);
      throw err;
    }
    log(`${keyring} cannot verify ${apt.suite}; fetching debian-archive-keyring from stable`);
  }
  const boot = new PrivateApt(join(root, "_stable-keyring", "apt"), "stable", apt.arch);
  await boot.setup(mirror, HOST_KEYRING);
  await boot.update(0);
  const pkg = (await boot.show(["debian-archive-keyring"])).get("debian-archive-keyring");
  if (!pkg) throw new Error("stable has no debian-archive-keyring package");
  const [deb] = await boot.download(dirname(boot.dir), [pkg]);
  const x = await Deno.makeTempDir({ dir: dirname(boot.dir) });
  await run("dpkg", ["-x", deb, x]);
  await Deno.copyFile(join(x, "usr/share/keyrings/debian-archive-keyring.gpg"), own);
  await Deno.remove(x, { recursive: true });
  await apt.setup(mirror, own);
  await apt.update(0);
}

/** The packages to unpack: the python ones plus the `lib*` packages they depend on. */
async function resolvePackages(apt: PrivateApt, minor: string) {
  const wanted = [
    `python${minor}-minimal`,
    `libpython${minor}-minimal`,
    `libpython${minor}-stdlib`,
  ];
  const dev = `libpython${minor}-dev`;
  const found = await apt.show([...wanted, dev, "libc6"]);
  for (const name of wanted) {
    if (!found.has(name)) throw new Error(`${apt.suite} has no package ${name}`);
  }
  // Follow Depends into library packages (Section: libs) only: the shared objects the
  // NEEDED walk in assemble() looks for are in those.
  const seen = new Set(found.keys());
  let todo = [...found.values()];
  while (todo.length) {
    const deps = new Set<string>();
    for (const p of todo) {
      if (p.Package === dev) continue;
      for (const alt of `${p.Depends ?? ""},${p["Pre-Depends"] ?? ""}`.split(",")) {
        const name = alt.split("|")[0].trim().split(/[\s:(]/)[0];
        if (name && !/-dev$|^libpython/.test(name) && !seen.has(name)) deps.add(name);
      }
    }
    for (const d of deps) seen.add(d);
    const more = new Map(
      [...(deps.size ? await apt.show([...deps]) : [])].filter(([, v]) =>
        /(^|\/)libs$/.test(v.Section ?? "")
      ),
    );
    for (const [k, v] of more) found.set(k, v);
    todo = [...more.values()];
  }
  return [...found.values()].sort((a, b) => a.Package.localeCompare(b.Package));
}

async function isElf(path: string): Promise<boolean> {
  using f = await Deno.open(path);
  const head = new Uint8Array(4);
  return (await f.read(head)) === 4 && decoder.decode(head) === "\x7fELF";
}

async function needed(path: string): Promise<string[]> {
  return (await run("patchelf", ["--print-needed", path])).split("\n").filter(Boolean);
}

/** Removes what a PBS-like slim tree does not ship and symlinks that leave the tree. */
async function prune(dir: string, top: string, notes: string[]) {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isSymlink) {
      const real = await Deno.realPath(p).catch(() => "");
      const alias = /^_sysconfigdata_.*\.py$/.test(e.name); // Debian's second name for it
      if (alias || !real.startsWith(top + "/")) {
        notes.push(`dropped symlink lib/${p.slice(top.length + 1)}`);
        await Deno.remove(p);
      }
    } else if (e.isDirectory) {
      const drop = SKIP_DIRS.has(e.name) || e.name === "dist-packages" ||
        e.name === "site-packages";
      if (drop) await Deno.remove(p, { recursive: true });
      else await prune(p, top, notes);
    } else if (SKIP_FILES.has(e.name) || /\.(pyc|pyo|a)$/.test(e.name)) {
      await Deno.remove(p);
    }
  }
}

/** Debian's prefix `/usr` -> PBS's `/install`, on whole path components; TZPATH stays. */
async function rewritePrefix(path: string) {
  const text = await Deno.readTextFile(path);
  const lines = text.split("\n").map((l) =>
    /["']TZPATH["']/.test(l) ? l : l.replace(/\/usr(?![\w.+-])/g, PBS_PREFIX)
  );
  await Deno.writeTextFile(path, lines.join("\n"));
}

/** Undoes Debian's install-scheme patches: `posix_prefix` and `site-packages`, as upstream. */
async function undoDebianSchemes(lib: string) {
  const sc = join(lib, "sysconfig", "__init__.py");
  const text = await Deno.readTextFile(sc);
  await Deno.writeTextFile(
    sc,
    text.replace(/prefix_scheme = 'posix_local'/g, "prefix_scheme = 'posix_prefix'"),
  );
  const site = join(lib, "site.py");
  const s = (await Deno.readTextFile(site))
    .replace(/\n +if is_virtual_environment:\n[\s\S]*?# this one is deprecated for Debian\n/, "\n")
    .replace(/(for libdir in libdirs:\n[^]*?)"dist-packages"\)/, '$1"site-packages")');
  await Deno.writeTextFile(site, s);
}

/**
 * `site` is frozen into the interpreter, so its Debian `dist-packages` list ignores the
 * patched `site.py`: the marshalled constant `dist-packages` (a short interned string,
 * `z\x0d` or `Z\x0d`, same length as `site-packages`) is overwritten in the binary.
 * `site.getsitepackages()` then names `local/lib/pythonX.Y/site-packages` and
 * `lib/python3/site-packages` too, which do not exist and so stay off `sys.path`.
 */
async function patchFrozenSite(exe: string): Promise<number> {
  const data = await Deno.readFile(exe);
  const from = new TextEncoder().encode("dist-packages");
  const to = new TextEncoder().encode("site-packages");
  let count = 0;
  for (let i = data.indexOf(from[0], 2); i >= 0; i = data.indexOf(from[0], i + 1)) {
    if (data[i - 1] !== 0x0d || ((data[i - 2] & 0x7f) | 0x20) !== 0x7a) continue;
    if (from.every((b, k) => data[i + k] === b)) data.set(to, i), count++;
  }
  if (count) await Deno.writeFile(exe, data);
  return count;
}

async function sizeOf(path: string): Promise<number> {
  const info = await Deno.lstat(path);
  if (!info.isDirectory) return info.size;
  let total = 0;
  for await (const e of Deno.readDir(path)) total += await sizeOf(join(path, e.name));
  return total;
}

const PROBE = `
import json, platform, sys, sysconfig
import ssl, sqlite3, zlib, ctypes, decimal
print(json.dumps({"version": platform.python_version(), "prefix": sys.prefix,
  "paths": sysconfig.get_paths(), "path": sys.path,
  "ssl": ssl.OPENSSL_VERSION, "sqlite": sqlite3.sqlite_version}))
`;

/** Runs the built interpreter and checks it imports and reports the tree as its home. */
async function verify(python: string, home: string, minor: string): Promise<string> {
  const out = await new Deno.Command(python, {
    args: ["-I", "-B", "-c", PROBE],
    clearEnv: true,
    env: { LC_ALL: "C.UTF-8" },
  }).output();
  if (!out.success) throw new Error(`${python} fails: ${decoder.decode(out.stderr).trim()}`);
  const p = JSON.parse(decoder.decode(out.stdout));
  const site = `${home}/lib/python${minor}/site-packages`;
  const bad = Object.entries(p.paths as Record<string, string>).filter(([, v]) =>
    v !== home && !v.startsWith(home + "/")
  );
  if (p.prefix !== home || bad.length || p.paths.purelib !== site || !p.path.includes(site)) {
    throw new Error(`${python} does not see its tree: ${decoder.decode(out.stdout).trim()}`);
  }
  return p.version;
}

/** Lays out the unpacked packages as `<out>/tree/python` and `<out>/support/lib`. */
async function assemble(x: string, out: string, final: string, minor: string, notes: string[]) {
  const ma = (await list(join(x, "libc6", "usr", "lib"))).find((e) => e.name.includes("-linux-"))
    ?.name;
  if (!ma) throw new Error("libc6 has no usr/lib/<multiarch> folder");
  const home = join(out, "tree", "python");
  const lib = join(home, "lib", `python${minor}`);
  const support = join(out, "support", "lib");
  await Deno.mkdir(join(home, "bin"), { recursive: true });
  await Deno.mkdir(join(home, "lib"));
  await Deno.mkdir(support, { recursive: true });
  const exe = join(home, "bin", `python${minor}`);
  await Deno.rename(join(x, "rest", "usr", "bin", `python${minor}`), exe);
  for (const l of ["python3", "python"]) await Deno.symlink(`python${minor}`, join(home, "bin", l));
  await Deno.rename(join(x, "rest", "usr", "lib", `python${minor}`), lib);
  await prune(lib, join(home, "lib"), notes);
  await Deno.mkdir(join(lib, "site-packages"));
  await Deno.writeTextFile(
    join(lib, "site-packages", "README.txt"),
    "This directory exists so that 3rd party packages can be installed\nhere.  Read the source for site.py for more details.\n",
  );
  await undoDebianSchemes(lib);
  if (!(await patchFrozenSite(exe))) notes.push("frozen site module not patched");
  for await (const e of Deno.readDir(lib)) {
    if (e.name.startsWith("build-details.") && e.name.endsWith(".json")) {
      await Deno.rename(join(lib, e.name), join(lib, "build-details.json"));
    }
  }
  const configs = [];
  for await (const e of Deno.readDir(lib)) {
    if (/^(_sysconfigdata_.*\.py|_sysconfig_vars_.*\.json|build-details\.json)$/.test(e.name)) {
      configs.push(join(lib, e.name));
    }
    if (e.name.startsWith("config-")) configs.push(join(lib, e.name, "Makefile"));
  }
  const include = join(x, "rest", "usr", "include", `python${minor}`);
  if (await exists(include)) {
    await Deno.mkdir(join(home, "include"));
    await Deno.rename(include, join(home, "include", `python${minor}`));
    const cfg = join(x, "rest", "usr", "include", ma, `python${minor}`, "pyconfig.h");
    if (await exists(cfg)) {
      await Deno.copyFile(cfg, join(home, "include", `python${minor}`, "pyconfig.h"));
    }
    const pc = join(x, "rest", "usr", "lib", ma, "pkgconfig");
    await Deno.mkdir(join(home, "lib", "pkgconfig"));
    for (const e of await list(pc)) {
      if (!e.name.startsWith(`python-${minor}`)) continue;
      await Deno.copyFile(join(pc, e.name), join(home, "lib", "pkgconfig", e.name));
      configs.push(join(home, "lib", "pkgconfig", e.name));
    }
  } else notes.push(`no libpython${minor}-dev: no headers`);
  for (const c of configs) if (await exists(c)) await rewritePrefix(c);
  // Support libraries: libc6 whole, plus the NEEDED closure of the interpreter and modules.
  const dirsOf = (pkg: string) => [join(x, pkg, "usr/lib", ma), join(x, pkg, "lib", ma)];
  const finalSupport = join(final, "support", "lib");
  const copyFrom = async (src: string, own: boolean) => {
    const name = basename(src);
    if (await exists(join(support, name))) return;
    await Deno.copyFile(await Deno.realPath(src), join(support, name));
    if (own && !name.startsWith("ld-linux") && (await needed(join(support, name))).length) {
      await run("patchelf", ["--set-rpath", "$ORIGIN", join(support, name)]);
    }
  };
  for (const d of dirsOf("libc6")) {
    for (const e of await list(d)) {
      if (e.name.includes(".so") && !e.isDirectory) await copyFrom(join(d, e.name), false);
    }
  }
  const modules = [];
  for await (const e of Deno.readDir(join(lib, "lib-dynload"))) {
    const p = join(lib, "lib-dynload", e.name);
    if (e.isFile && (await isElf(p))) modules.push(p);
  }
  const queue = [exe, ...modules];
  for (let i = 0; i < queue.length; i++) {
    for (const soname of await needed(queue[i])) {
      if (await exists(join(support, soname))) continue;
      const src = dirsOf("rest").map((d) => join(d, soname));
      const hit = (await Promise.all(src.map(exists))).indexOf(true);
      if (hit < 0) {
        throw new Error(`no package provides ${soname} (NEEDED by ${basename(queue[i])})`);
      }
      await copyFrom(src[hit], true);
      queue.push(join(support, soname));
    }
  }
  const loader = basename(
    await run("patchelf", ["--print-interpreter", exe]).then((s) => s.trim()),
  );
  if (!(await exists(join(support, loader)))) throw new Error(`libc6 has no ${loader}`);
  await run("patchelf", [
    "--set-interpreter",
    join(finalSupport, loader),
    "--set-rpath",
    `$ORIGIN/../lib:${finalSupport}`,
    exe,
  ]);
  for (const m of modules) await run("patchelf", ["--set-rpath", finalSupport, m]);
  notes.push("interpreter and lib-dynload load the suite's glibc from the support folder");
}

/**
 * Builds (or takes from the cache) CPython `minor` from the Debian `suite`'s packages as
 * a PBS `install_only` tree. Safe for concurrent callers: a lock file per suite
 * serializes them, and a build is renamed into place only when complete.
 *
 * @example
 * ```ts
 * const py = await debianPython({ minor: "3.14" });
 * console.log(py.version, py.python); // 3.14.10 …/tree/python/bin/python3.14
 * ```
 */
export async function debianPython(opts: DebianPythonOptions): Promise<DebianPython> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const suite = opts.suite ?? "sid";
  if (!/^3\.\d+$/.test(opts.minor)) throw new RangeError(`minor must be 3.N, got ${opts.minor}`);
  if (!/^[a-z][a-z0-9-]*$/.test(suite)) throw new RangeError(`bad suite name ${suite}`);
  const root = opts.cacheDir ?? defaultCacheDir();
  const dir = join(root, suite);
  await Deno.mkdir(dir, { recursive: true });
  using lock = await Deno.open(join(dir, ".lock"), { create: true, write: true });
  await lock.lock(true);
  const arch = (await run("dpkg", ["--print-architecture"])).trim();
  const apt = new PrivateApt(join(dir, "apt"), suite, arch);
  await prepareApt(apt, root, opts);
  const pkgs = await resolvePackages(apt, opts.minor);
  const packages = pkgs.map((p) => `${p.Package}=${p.Version}`);
  const self = new URL(import.meta.url);
  const script = self.protocol === "file:" ? await Deno.readFile(self) : self.href;
  const key = createHash("sha256").update(script).update(packages.join("\n")).digest("hex");
  const debVersion = pkgs.find((p) => p.Package === `python${opts.minor}-minimal`)!.Version;
  const final = join(
    dir,
    `python${opts.minor}_${debVersion.replace(":", "_")}_${key.slice(0, 10)}`,
  );
  const stamp = join(final, "result.json");
  if (await exists(stamp)) {
    log(`python${opts.minor} ${debVersion} (${suite}) is in ${final}`);
    return { ...JSON.parse(await Deno.readTextFile(stamp)), cached: true };
  }
  await ensurePatchelf(log);
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".tmp-")) await Deno.remove(join(dir, e.name), { recursive: true });
  }
  await Deno.mkdir(join(dir, "debs"), { recursive: true });
  log(`getting ${packages.length} packages for python${opts.minor} ${debVersion} from ${suite}`);
  const debs = await apt.download(join(dir, "debs"), pkgs);
  const tmp = join(dir, `.tmp-${crypto.randomUUID()}`);
  const notes: string[] = [];
  try {
    for (const [i, deb] of debs.entries()) {
      const to = join(tmp, "x", pkgs[i].Package === "libc6" ? "libc6" : "rest");
      await Deno.mkdir(to, { recursive: true });
      await run("dpkg", ["-x", deb, to]);
    }
    await assemble(join(tmp, "x"), tmp, final, opts.minor, notes);
    await Deno.remove(join(tmp, "x"), { recursive: true });
    await Deno.rename(tmp, final);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  const tree = join(final, "tree");
  const python = join(tree, "python", "bin", `python${opts.minor}`);
  try {
    const version = await verify(python, join(tree, "python"), opts.minor);
    const result: DebianPython = {
      version,
      debVersion,
      tree,
      python,
      supportDir: join(final, "support"),
      suite,
      packages,
      sizes: { tree: await sizeOf(tree), support: await sizeOf(join(final, "support")) },
      notes,
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
      cached: false,
    };
    await Deno.writeTextFile(`${stamp}.tmp`, JSON.stringify(result, null, 2) + "\n");
    await Deno.rename(`${stamp}.tmp`, stamp);
    return result;
  } catch (err) {
    await Deno.remove(final, { recursive: true }).catch(() => {});
    throw err;
  }
}

if (import.meta.main) {
  let suite: string | undefined;
  const minors = [];
  for (const a of Deno.args) {
    if (a.startsWith("--suite=")) suite = a.slice(8);
    else if (/^3\.\d+$/.test(a)) minors.push(a);
    else {
      console.error("usage: debian_python.ts [--suite=sid] 3.X [3.Y ...]");
      Deno.exit(2);
    }
  }
  for (const minor of minors) {
    const t0 = performance.now();
    try {
      const r = await debianPython({ minor, suite, log: (l) => console.error(l) });
      const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(
        `${r.version} (${r.suite} ${r.debVersion}) ${r.python} tree ${mib(r.sizes.tree)}` +
          ` support ${mib(r.sizes.support)} ${r.cached ? "cached" : "built"} in ${secs}s`,
      );
    } catch (err) {
      console.error(`error: python${minor}: ${err instanceof Error ? err.message : err}`);
      Deno.exitCode = 1;
    }
  }
}
