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
import { join } from "node:path";
import {
  ensurePatchelf,
  exists,
  list,
  prepareApt,
  PrivateApt,
  resolvePackages,
  run,
} from "./debian_apt.ts";
import { assemble, du, verify } from "./debian_layout.ts";

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

/** Unpacked into the support folder as is: the loader and libc need no RUNPATH. */
const LIBC_PKGS = new Set(["libc6", "libgcc-s1"]);

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
  // The three scripts that make the tree are part of the key: changing one rebuilds.
  const hash = createHash("sha256");
  for (const name of ["debian_python.ts", "debian_apt.ts", "debian_layout.ts"]) {
    const url = new URL(name, import.meta.url);
    hash.update(url.protocol === "file:" ? await Deno.readFile(url) : url.href);
  }
  const key = hash.update(packages.join("\n")).digest("hex");
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
