/**
 * Builds a real CPython from a Debian suite's binary packages as a PBS `install_only`
 * tree (`python/bin/python3.X`, `python/lib/python3.X`, `python/include`), so tests can use
 * interpreters this machine lacks: 3.14 and 3.15 from `sid`, or two patch releases of one
 * minor from two suites. The machine's apt setup is never touched: apt runs with a private
 * sources list (the machine's Debian mirror, suite `sid` by default), state, cache and an
 * empty dpkg status. The suite's glibc and the libraries the interpreter and `lib-dynload`
 * need go to a support folder that `patchelf` points PT_INTERP and the RUNPATHs at. The
 * suite is verified with the host's Debian archive keyring or, when that lacks its keys,
 * with the `debian-archive-keyring` package of `stable`; never with `trusted=yes`.
 * Results are cached in `${XDG_CACHE_HOME:-~/.cache}/pyprime-fixtures/debian/<suite>/`.
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
  /** The folder containing `python/` (what a PBS `install_only` archive unpacks to). */
  tree: string;
  /** `<tree>/python/bin/pythonX.Y`. */
  python: string;
  /** Folder whose `lib/` holds the suite's loader, libc and the libraries needed. */
  supportDir: string;
  /** The suite the packages came from. */
  suite: string;
  /** `package=version` of every package unpacked. */
  packages: string[];
  /** Bytes of the tree and of the support folder. */
  sizes: { tree: number; support: number };
  /** What differs from a plain unpack, in words. */
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

type Pkg = Record<string, string>;
const decoder = new TextDecoder();
const HOST_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
const FALLBACK_MIRROR = "http://deb.debian.org/debian";
/** Left out of the stdlib, as `build_fixtures.ts` leaves them out. */
const SKIP_DIRS = new Set(["__pycache__", "test", "tests", "idle_test"]);
/** Unpacked into the support folder as is: the loader and libc need no RUNPATH. */
const LIBC_PKGS = new Set(["libc6", "libgcc-s1"]);

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const env = { LC_ALL: "C", DEBIAN_FRONTEND: "noninteractive" };
  const out = await new Deno.Command(cmd, { args, cwd, env, stdin: "null" }).output();
  if (!out.success) {
    const err = decoder.decode(out.stderr).trim().split("\n").filter((l) => !l.startsWith("W:"));
    throw new Error(`${cmd} ${args.slice(-2).join(" ")} failed: ${err.slice(-3).join(" | ")}`);
  }
  return decoder.decode(out.stdout);
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

const list = (dir: string): Promise<Deno.DirEntry[]> =>
  Array.fromAsync(Deno.readDir(dir)).catch((e) =>
    e instanceof Deno.errors.NotFound ? [] : Promise.reject(e)
  );

async function ensurePatchelf(log: (l: string) => void) {
  if (await run("patchelf", ["--version"]).then(() => true, () => false)) return;
  const missing = "patchelf is missing: install the Debian package patchelf";
  if (Deno.uid() !== 0) throw new Error(missing);
  log("installing patchelf with apt-get");
  await run("apt-get", ["install", "-y", "-q", "patchelf"]).catch(() => {
    throw new Error(missing);
  });
}

/** The Debian mirror the machine's own apt sources name. */
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

/** apt with its own sources list, state, cache and an empty dpkg status. */
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

  /** Runs `apt-get update` when the lists are older than `maxAgeHours`. */
  async update(maxAgeHours: number): Promise<boolean> {
    const stamp = `${this.dir}/updated`;
    const age = await Deno.stat(stamp).then((s) => Date.now() - s.mtime!.getTime(), () => Infinity);
    if (age < maxAgeHours * 3600e3) return false;
    await run("apt-get", [...this.opts(), "-q", "update", "--error-on=any"]);
    await Deno.writeTextFile(stamp, new Date().toISOString() + "\n");
    return true;
  }

  /** `apt-cache show` paragraphs by package name; unknown names are left out. */
  async show(names: string[]): Promise<Map<string, Pkg>> {
    const args = [...this.opts(), "show", "--no-all-versions", ...names];
    const out = await new Deno.Command("apt-cache", { args, env: { LC_ALL: "C" } }).output();
    const found = new Map<string, Pkg>();
    for (const para of decoder.decode(out.stdout).split(/\n\n+/)) {
      const f: Pkg = {};
      for (const m of para.matchAll(/^([\w-]+): (.*(?:\n .*)*)/gm)) f[m[1]] = m[2];
      if (f.Package && !found.has(f.Package)) found.set(f.Package, f);
    }
    return found;
  }

  /** Downloads the packages into `dir` unless there; returns the `.deb` paths. */
  async download(dir: string, pkgs: Pkg[]): Promise<string[]> {
    const file = (p: Pkg) =>
      join(dir, `${p.Package}_${p.Version.replace(":", "%3a")}_${p.Architecture}.deb`);
    const missing = [];
    for (const p of pkgs) if (!(await exists(file(p)))) missing.push(p);
    if (missing.length) {
      const tmp = await Deno.makeTempDir({ dir, prefix: ".dl-" });
      try {
        const names = missing.map((p) => `${p.Package}=${p.Version}`);
        await run("apt-get", [...this.opts(), "-q", "download", ...names], tmp);
        for (const p of missing) await Deno.rename(join(tmp, basename(file(p))), file(p));
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    }
    return pkgs.map(file);
  }
}

/** Brings the suite's lists up to date; gets a newer keyring when the one used fails. */
async function prepareApt(apt: PrivateApt, root: string, opts: DebianPythonOptions) {
  const log = opts.log ?? (() => {});
  const mirror = await hostMirror();
  const own = join(apt.dir, "debian-archive-keyring.gpg");
  const keyring = (await exists(own)) ? own : (opts.keyring ?? HOST_KEYRING);
  await apt.setup(mirror, keyring);
  try {
    if (await apt.update(opts.maxListAgeHours ?? 24)) log(`updated ${apt.suite} lists`);
    return;
  } catch (err) {
    const msg = (err as Error).message;
    if (keyring === own || !/NO_PUBKEY|EXPKEYSIG|signature|not signed|not valid/i.test(msg)) {
      if (await exists(join(apt.dir, "updated"))) return log(`using old lists: ${msg}`);
      throw err;
    }
    log(`${keyring} cannot verify ${apt.suite}; getting debian-archive-keyring from stable`);
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

/** The python packages plus the library packages (`Section: libs`) they depend on. */
async function resolvePackages(apt: PrivateApt, minor: string): Promise<Pkg[]> {
  const saved = join(apt.dir, `resolved-python${minor}.json`);
  const lists = (await Deno.stat(join(apt.dir, "updated"))).mtime!.getTime();
  const old = await Deno.readTextFile(saved).then(JSON.parse, () => undefined);
  if (old?.lists === lists) return old.pkgs;
  const wanted = ["python%-minimal", "libpython%-minimal", "libpython%-stdlib"]
    .map((n) => n.replace("%", minor));
  const dev = `libpython${minor}-dev`;
  const found = await apt.show([...wanted, dev, "libc6"]);
  const absent = wanted.find((name) => !found.has(name));
  if (absent) throw new Error(`${apt.suite} has no package ${absent}`);
  const seen = new Set(found.keys());
  for (let todo = [...found.values()]; todo.length;) {
    const deps = new Set<string>();
    for (const p of todo.filter((p) => p.Package !== dev)) {
      for (const alt of `${p.Depends ?? ""},${p["Pre-Depends"] ?? ""}`.split(",")) {
        const name = alt.split("|")[0].trim().split(/[\s:(]/)[0];
        if (name && !/-dev$|^libpython/.test(name) && !seen.has(name)) deps.add(name);
      }
    }
    deps.forEach((d) => seen.add(d));
    const more = [...(deps.size ? await apt.show([...deps]) : [])]
      .filter(([, p]) => /(^|\/)libs$/.test(p.Section ?? ""));
    for (const [k, p] of more) found.set(k, p);
    todo = more.map(([, p]) => p);
  }
  const pkgs = [...found.values()].sort((a, b) => a.Package.localeCompare(b.Package))
    .map(({ Package, Version, Architecture }) => ({ Package, Version, Architecture }));
  await Deno.writeTextFile(saved, JSON.stringify({ lists, pkgs }));
  return pkgs;
}

const needed = async (path: string) =>
  (await run("patchelf", ["--print-needed", path])).split("\n").filter(Boolean);

/** Drops tests, caches, `EXTERNALLY-MANAGED`, static libs and symlinks out of the tree. */
async function prune(dir: string, top: string, notes: string[]) {
  for (const e of await list(dir)) {
    const p = join(dir, e.name);
    if (e.isSymlink) {
      const real = await Deno.realPath(p).catch(() => "");
      if (/^_sysconfigdata_.*\.py$/.test(e.name) || !real.startsWith(top + "/")) {
        notes.push(`dropped symlink ${p.slice(top.length + 1)}`);
        await Deno.remove(p);
      }
    } else if (e.isDirectory) {
      if (SKIP_DIRS.has(e.name) || /^(site|dist)-packages$/.test(e.name)) {
        await Deno.remove(p, { recursive: true });
      } else await prune(p, top, notes);
    } else if (e.name === "EXTERNALLY-MANAGED" || /\.(pyc|pyo|a)$/.test(e.name)) {
      await Deno.remove(p);
    }
  }
}

/**
 * Debian's prefix `/usr` becomes PBS's `/install`, and its multiarch lib and include dirs
 * PBS's plain ones (`LIBDIR` is `/install/lib`); `TZPATH` still names the host's tzdata.
 */
async function rewritePrefix(path: string, ma: string) {
  const lines = (await Deno.readTextFile(path)).split("\n").map((l) =>
    /["']TZPATH["']/.test(l) ? l : l.replaceAll(`/usr/lib/${ma}`, "/usr/lib")
      .replaceAll(`/usr/include/${ma}`, "/usr/include").replace(/\/usr(?![\w.+-])/g, "/install")
  );
  await Deno.writeTextFile(path, lines.join("\n"));
}

/** Undoes Debian's `posix_local` default scheme and `dist-packages` (as in the binary). */
async function undoDebianSchemes(lib: string) {
  for (
    const [file, from, to] of [
      ["sysconfig/__init__.py", "prefix_scheme = 'posix_local'", "prefix_scheme = 'posix_prefix'"],
      ["site.py", '"dist-packages"', '"site-packages"'],
    ]
  ) {
    const path = join(lib, file);
    await Deno.writeTextFile(path, (await Deno.readTextFile(path)).replaceAll(from, to));
  }
}

/**
 * `site` is frozen into the interpreter, so the patched `site.py` is not what runs. The
 * marshalled constant `dist-packages` (a short interned string, `z\x0d` or `Z\x0d`, as
 * long as `site-packages`) is overwritten in the binary: `lib/pythonX.Y/site-packages`
 * joins `sys.path`, and Debian's two other entries name folders that do not exist.
 */
async function patchFrozenSite(exe: string): Promise<number> {
  const data = await Deno.readFile(exe);
  const [from, to] = ["dist-packages", "site-packages"].map((s) => new TextEncoder().encode(s));
  let count = 0;
  for (let i = data.indexOf(from[0], 2); i >= 0; i = data.indexOf(from[0], i + 1)) {
    const marshalled = data[i - 1] === 0x0d && ((data[i - 2] & 0x7f) | 0x20) === 0x7a;
    if (!marshalled || !from.every((b, k) => data[i + k] === b)) continue;
    data.set(to, i);
    count++;
  }
  if (count) await Deno.writeFile(exe, data);
  return count;
}

const du = async (path: string) => Number((await run("du", ["-sb", path])).split("\t")[0]);

const PROBE = `
import json, platform, sys, sysconfig
import ssl, sqlite3, zlib, ctypes, decimal
print(json.dumps({"version": platform.python_version(), "prefix": sys.prefix,
  "paths": sysconfig.get_paths(), "path": sys.path}))
`;

/** Runs the interpreter: it must import the C modules and see the tree as its home. */
async function verify(python: string, home: string, minor: string): Promise<string> {
  const args = ["-I", "-B", "-c", PROBE];
  const out = await new Deno.Command(python, { args, clearEnv: true, env: { LC_ALL: "C.UTF-8" } })
    .output();
  if (!out.success) throw new Error(`${python} fails: ${decoder.decode(out.stderr).trim()}`);
  const p = JSON.parse(decoder.decode(out.stdout));
  const site = `${home}/lib/python${minor}/site-packages`;
  const paths = Object.values(p.paths as Record<string, string>);
  if (
    p.prefix !== home || paths.some((v) => v !== home && !v.startsWith(home + "/")) ||
    p.paths.purelib !== site || !p.path.includes(site)
  ) throw new Error(`${python} does not see its tree: ${decoder.decode(out.stdout).trim()}`);
  return p.version;
}

/** Lays out the unpacked `x/{libc,rest}` as `<out>/tree/python` and `<out>/support/lib`. */
async function assemble(x: string, out: string, final: string, minor: string, notes: string[]) {
  const libcDirs = await list(join(x, "libc", "usr", "lib"));
  const ma = libcDirs.find((e) => e.name.includes("-linux-"))?.name; // x86_64-linux-gnu
  if (!ma) throw new Error("libc6 has no usr/lib/<multiarch> folder");
  const usr = join(x, "rest", "usr");
  const home = join(out, "tree", "python");
  const lib = join(home, "lib", `python${minor}`);
  const support = join(out, "support", "lib");
  for (const d of [join(home, "bin"), join(home, "lib", "pkgconfig"), support]) {
    await Deno.mkdir(d, { recursive: true });
  }
  const exe = join(home, "bin", `python${minor}`);
  await Deno.rename(join(usr, "bin", `python${minor}`), exe);
  for (const l of ["python3", "python"]) await Deno.symlink(`python${minor}`, join(home, "bin", l));
  await Deno.rename(join(usr, "lib", `python${minor}`), lib);
  await prune(lib, join(home, "lib"), notes);
  await Deno.mkdir(join(lib, "site-packages"));
  await Deno.writeTextFile(
    join(lib, "site-packages", "README.txt"),
    "This directory exists so that 3rd party packages can be installed\n" +
      "here.  Read the source for site.py for more details.\n",
  );
  await undoDebianSchemes(lib);
  if (!(await patchFrozenSite(exe))) notes.push("frozen site module still says dist-packages");
  const configs = [];
  for (const e of await list(lib)) {
    if (/^build-details\..*\.json$/.test(e.name)) { // Debian: build-details..<multiarch>.json
      await Deno.rename(join(lib, e.name), join(lib, "build-details.json"));
      configs.push(join(lib, "build-details.json"));
    }
    if (/^(_sysconfigdata_.*\.py|_sysconfig_vars_.*\.json)$/.test(e.name)) {
      configs.push(join(lib, e.name));
    }
    if (e.name.startsWith("config-")) configs.push(join(lib, e.name, "Makefile"));
  }
  const include = join(usr, "include", `python${minor}`);
  if (await exists(include)) {
    await Deno.mkdir(join(home, "include"));
    await Deno.rename(include, join(home, "include", `python${minor}`));
    const cfg = join(usr, "include", ma, `python${minor}`, "pyconfig.h");
    if (await exists(cfg)) {
      await Deno.copyFile(cfg, join(home, "include", `python${minor}`, "pyconfig.h"));
    }
    for (const e of await list(join(usr, "lib", ma, "pkgconfig"))) {
      if (!e.name.startsWith(`python-${minor}`)) continue;
      await Deno.copyFile(
        join(usr, "lib", ma, "pkgconfig", e.name),
        join(home, "lib", "pkgconfig", e.name),
      );
      configs.push(join(home, "lib", "pkgconfig", e.name));
    }
  } else notes.push(`no libpython${minor}-dev: no headers`);
  for (const c of configs) if (await exists(c)) await rewritePrefix(c, ma);

  // Support: libc6 and libgcc-s1 whole, plus the NEEDED closure of interpreter and modules.
  const copy = async (src: string, patch: boolean) => {
    const to = join(support, basename(src));
    if (await exists(to)) return;
    await Deno.copyFile(await Deno.realPath(src), to);
    // RUNPATH is not inherited: libcrypto must find the suite's libzstd, not the host's.
    if (patch && (await needed(to)).length) await run("patchelf", ["--set-rpath", "$ORIGIN", to]);
  };
  const dirsOf = (pkg: string) => [join(x, pkg, "usr/lib", ma), join(x, pkg, "lib", ma)];
  for (const d of dirsOf("libc")) {
    for (const e of await list(d)) {
      if (/\.so/.test(e.name) && !e.isDirectory) await copy(join(d, e.name), false);
    }
  }
  const modules = (await list(join(lib, "lib-dynload"))).filter((e) => e.name.endsWith(".so"))
    .map((e) => join(lib, "lib-dynload", e.name));
  const queue = [exe, ...modules];
  for (let i = 0; i < queue.length; i++) {
    for (const soname of await needed(queue[i])) {
      if (await exists(join(support, soname))) continue;
      const src = dirsOf("rest").map((d) => join(d, soname));
      const hit = (await Promise.all(src.map(exists))).indexOf(true);
      if (hit < 0) {
        throw new Error(`no package provides ${soname} (NEEDED by ${basename(queue[i])})`);
      }
      await copy(src[hit], true);
      queue.push(join(support, soname));
    }
  }
  const finalSupport = join(final, "support", "lib");
  const loader = basename((await run("patchelf", ["--print-interpreter", exe])).trim());
  if (!(await exists(join(support, loader)))) throw new Error(`libc6 has no ${loader}`);
  const rpath = `$ORIGIN/../lib:${finalSupport}`;
  await run("patchelf", [
    "--set-interpreter",
    join(finalSupport, loader),
    "--set-rpath",
    rpath,
    exe,
  ]);
  for (const m of modules) await run("patchelf", ["--set-rpath", finalSupport, m]);
}

/**
 * Builds (or takes from the cache) CPython `minor` from the Debian `suite`'s packages as
 * a PBS `install_only` tree whose interpreter runs on this machine. Safe for concurrent
 * callers: a lock file per suite serializes them, and a build appears only when complete.
 *
 * @example
 * ```ts
 * const py = await debianPython({ minor: "3.14" });
 * console.log(py.version, py.python); // 3.14.10 …/tree/python/bin/python3.14
 * ```
 */
export async function debianPython(opts: DebianPythonOptions): Promise<DebianPython> {
  const started = performance.now();
  const { minor, log = () => {}, suite = "sid" } = opts;
  if (!/^3\.\d+$/.test(minor)) throw new RangeError(`minor must be 3.N, got ${minor}`);
  if (!/^[a-z][a-z0-9-]*$/.test(suite)) throw new RangeError(`bad suite name ${suite}`);
  const root = opts.cacheDir ?? defaultCacheDir();
  const dir = join(root, suite);
  await Deno.mkdir(dir, { recursive: true });
  using lock = await Deno.open(join(dir, ".lock"), { create: true, write: true });
  await lock.lock(true);
  const arch = (await run("dpkg", ["--print-architecture"])).trim();
  const apt = new PrivateApt(join(dir, "apt"), suite, arch);
  await prepareApt(apt, root, opts);
  const pkgs = await resolvePackages(apt, minor);
  const packages = pkgs.map((p) => `${p.Package}=${p.Version}`);
  const self = new URL(import.meta.url);
  const script = self.protocol === "file:" ? await Deno.readFile(self) : self.href;
  const key = createHash("sha256").update(script).update(packages.join("\n")).digest("hex");
  const debVersion = pkgs.find((p) => p.Package === `python${minor}-minimal`)!.Version;
  const final = join(dir, `python${minor}_${debVersion.replace(":", "_")}_${key.slice(0, 10)}`);
  const stamp = join(final, "result.json");
  if (await exists(stamp)) {
    log(`python${minor} ${debVersion} (${suite}) is in ${final}`);
    return { ...JSON.parse(await Deno.readTextFile(stamp)), cached: true };
  }
  await ensurePatchelf(log);
  for (const e of await list(dir)) {
    if (e.name.startsWith(".tmp-")) await Deno.remove(join(dir, e.name), { recursive: true });
  }
  await Deno.mkdir(join(dir, "debs"), { recursive: true });
  log(`getting ${pkgs.length} packages for python${minor} ${debVersion} from ${suite}`);
  const debs = await apt.download(join(dir, "debs"), pkgs);
  const tmp = join(dir, `.tmp-${crypto.randomUUID()}`);
  const notes = ["interpreter and lib-dynload load the suite's glibc from the support folder"];
  try {
    for (const [i, deb] of debs.entries()) {
      const to = join(tmp, "x", LIBC_PKGS.has(pkgs[i].Package) ? "libc" : "rest");
      await Deno.mkdir(to, { recursive: true });
      await run("dpkg", ["-x", deb, to]);
    }
    await assemble(join(tmp, "x"), tmp, final, minor, notes);
    await Deno.remove(join(tmp, "x"), { recursive: true });
    await Deno.rename(tmp, final);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  const tree = join(final, "tree");
  const python = join(tree, "python", "bin", `python${minor}`);
  try {
    const version = await verify(python, join(tree, "python"), minor);
    const supportDir = join(final, "support");
    const sizes = { tree: await du(tree), support: await du(supportDir) };
    const buildSeconds = Math.round((performance.now() - started) / 100) / 10;
    const result: DebianPython = {
      ...{ version, debVersion, tree, python, supportDir, suite, packages, sizes, notes },
      ...{ buildSeconds, cached: false },
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
  const suite = Deno.args.find((a) => a.startsWith("--suite="))?.slice(8);
  const minors = Deno.args.filter((a) => !a.startsWith("--suite="));
  if (!minors.length) console.error("usage: debian_python.ts [--suite=sid] 3.X [3.Y ...]");
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  for (const minor of minors) {
    const t0 = performance.now();
    try {
      const r = await debianPython({ minor, suite, log: (l) => console.error(l) });
      const how = `${r.cached ? "cached" : "built"} in ${
        ((performance.now() - t0) / 1e3).toFixed(1)
      }s`;
      const sizes = `tree ${mib(r.sizes.tree)} support ${mib(r.sizes.support)}`;
      console.log(`${r.version} (${r.suite} ${r.debVersion}) ${r.python} ${sizes} ${how}`);
    } catch (err) {
      console.error(`error: python${minor}: ${err instanceof Error ? err.message : err}`);
      Deno.exitCode = 1;
    }
  }
}
