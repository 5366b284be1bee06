/**
 * The layout half of `debian_python.ts`: turns the unpacked Debian packages into a PBS
 * `install_only` tree (`python/bin/python3.X`, `python/lib/python3.X` without tests or
 * caches, Debian's `/usr` prefix rewritten to PBS's `/install`) plus a support folder
 * with the suite's loader, libc and the libraries the interpreter and `lib-dynload` need
 * (their `NEEDED` closure); `patchelf` points PT_INTERP and the RUNPATHs at it.
 *
 * @module
 */
import { basename, join } from "node:path";
import { exists, list, run } from "./debian_apt.ts";

const decoder = new TextDecoder();
/** Left out of the stdlib, as `build_fixtures.ts` leaves them out. */
const SKIP_DIRS = new Set(["__pycache__", "test", "tests", "idle_test"]);

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

/** Bytes under `path`, as `du -sb` counts them. */
export const du = async (path: string) => Number((await run("du", ["-sb", path])).split("\t")[0]);

const PROBE = `
import json, platform, sys, sysconfig
import ssl, sqlite3, zlib, ctypes, decimal
print(json.dumps({"version": platform.python_version(), "prefix": sys.prefix,
  "paths": sysconfig.get_paths(), "path": sys.path}))
`;

/** Runs the interpreter: it must import the C modules and see the tree as its home. */
export async function verify(python: string, home: string, minor: string): Promise<string> {
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
export async function assemble(
  x: string,
  out: string,
  final: string,
  minor: string,
  notes: string[],
) {
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
