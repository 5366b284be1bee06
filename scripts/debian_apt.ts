/**
 * The apt half of `debian_python.ts`: a private apt (own sources list naming one suite,
 * own state, cache and an empty dpkg status, all passed with `-o Dir::…`) that resolves
 * and downloads a CPython's binary packages, and the small process helpers both halves
 * share. The machine's apt setup is never touched. The suite is verified with the host's
 * Debian archive keyring or, when that lacks its keys, with the `debian-archive-keyring`
 * package of `stable`; never with `trusted=yes`.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** One `apt-cache show` paragraph: field name → value. */
export type Pkg = Record<string, string>;
const decoder = new TextDecoder();
const HOST_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
const FALLBACK_MIRROR = "http://deb.debian.org/debian";

/** Runs `cmd` with a C locale; its stdout, or an error naming the last stderr lines. */
export async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const env = { LC_ALL: "C", DEBIAN_FRONTEND: "noninteractive" };
  const out = await new Deno.Command(cmd, { args, cwd, env, stdin: "null" }).output();
  if (!out.success) {
    const err = decoder.decode(out.stderr).trim().split("\n").filter((l) => !l.startsWith("W:"));
    throw new Error(`${cmd} ${args.slice(-2).join(" ")} failed: ${err.slice(-3).join(" | ")}`);
  }
  return decoder.decode(out.stdout);
}

/** Whether `path` exists (a dangling symlink counts). */
export const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

/** The entries of `dir`, none when it does not exist. */
export const list = (dir: string): Promise<Deno.DirEntry[]> =>
  Array.fromAsync(Deno.readDir(dir)).catch((e) =>
    e instanceof Deno.errors.NotFound ? [] : Promise.reject(e)
  );

/** Makes sure `patchelf` runs, installing it with apt-get when root. */
export async function ensurePatchelf(log: (l: string) => void) {
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
export class PrivateApt {
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

/** What {@link prepareApt} takes from the build's options. */
export interface PrepareOptions {
  /** Package lists older than this are refreshed with `apt-get update`; 24 by default. */
  maxListAgeHours?: number;
  /** Keyring tried first to verify the suite; the host's Debian archive keyring by default. */
  keyring?: string;
  /** Receives progress lines; silent by default. */
  log?: (line: string) => void;
}

/** Brings the suite's lists up to date; gets a newer keyring when the one used fails. */
export async function prepareApt(apt: PrivateApt, root: string, opts: PrepareOptions) {
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
export async function resolvePackages(apt: PrivateApt, minor: string): Promise<Pkg[]> {
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
