/**
 * Turns what the user typed after `pyprime install` into a plan: which bytes to
 * read (a file, stdin, a URL, or a catalog download through a mirror or cache) and
 * which sha256 they must have. Catalog and platform are loaded once, lazily.
 *
 * @module
 */
import { basename } from "node:path";
import { type Catalog, CatalogError, type Download } from "./catalog.ts";
import { embeddedDigests } from "./catalog_digests.ts";
import { downloadUrls, matching, mirrorBase, resolve } from "./match.ts";
import { packsOf } from "./packs.ts";
import { openUrl } from "../fetch/download.ts";
import { NetworkError } from "../fetch/network_error.ts";
import type { ArchiveSource } from "../fetch/source.ts";
import { detectPlatform, parsePlatformOverride, type Platform } from "./platform.ts";
import { cachedFeedExists, catalogWithFeed } from "./feed.ts";
import { withX86_64Level, type X86_64Level, x86_64LevelSetting } from "./x86_64_level.ts";
import { parseRequest, type PythonRequest } from "./request.ts";
import { openFile, openStdin } from "../fetch/source.ts";
import { type DownloadTuning, downloadTuningFromEnv } from "../fetch/tuning.ts";
import { redactUrl } from "../fetch/network_error.ts";
import { readSha256Sums, sha256SumsBeside, SUMS_NAME } from "../fetch/sha256sums.ts";
import { PyprimeError } from "../errors.ts";

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(
    Object.entries(value ?? {}).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

/** Settings that shape every plan of one command. */
export interface PlanSettings {
  /** `--catalog FILE|URL` / `PYPRIME_CATALOG`. */
  catalog?: string;
  /** `--platform OS-ARCH-LIBC`. */
  platform?: string;
  /** `--mirror URL` (repeatable: tried in order) / `PYPRIME_PYTHON_INSTALL_MIRROR`. */
  mirror?: string | string[];
  /** `--cache-dir DIR` / `PYPRIME_CACHE_DIR`. */
  cacheDir?: string;
  /** `--offline`. */
  offline?: boolean;
  /** Allow pre-releases for plain version requests. */
  prereleases?: boolean;
  /** `--refresh`: fetch the versions feed even when the cached copy is fresh. */
  refresh?: boolean;
  /** Receives the note when the versions feed is not used as asked. */
  note?: (message: string) => void;
  /** `--x86-64-level`; else `PYPRIME_X86_64_LEVEL`, else the baseline (1). */
  x86_64Level?: string;
  /**
   * Download tuning passed through (retries, backoff, timeouts, logging); what is
   * left unset here comes from {@link DOWNLOAD_ENV}, then the download defaults.
   */
  download?: DownloadTuning;
}

/**
 * How the bytes of a source are checked: against the digest of `--sha256` (`option`),
 * of the catalog entry with the archive's file name (`catalog`), of the `SHA256SUMS`
 * beside it (`sha256sums`), or not at all (`none`).
 */
export type Verification = "catalog" | "sha256sums" | "option" | "none";

/** The digest a source's bytes must have, and where it comes from. */
export interface Expected {
  /** Lowercase hex sha256; absent when `verified` is `none`. */
  sha256?: string;
  /** Where the digest comes from. */
  verified: Verification;
  /** For `none`, why no digest was found (shown in the warning). */
  reason?: string;
}

/** One source, resolved but not yet opened. */
export interface Plan {
  /** What the user typed. */
  spec: string;
  /** What the user typed, fit for messages and `--json`: a URL's credentials removed. */
  label: string;
  /** The parsed request. */
  request: PythonRequest;
  /** The catalog entry, for version and key requests. */
  download?: Download;
  /**
   * The download is for another machine (`--platform` names another OS, architecture or
   * libc): its interpreter cannot be run here to be probed or to compile bytecode.
   */
  foreign?: boolean;
  /**
   * The digest the bytes must have (read once, before any byte of the archive): may
   * read a `SHA256SUMS` beside the archive.
   */
  expected(): Promise<Expected>;
  /** Opens the bytes; may be called again to start over. */
  open(
    signal: AbortSignal,
    onProgress?: (n: number, total?: number) => void,
  ): Promise<ArchiveSource>;
}

/** The decoded last segment of a URL's path: an archive's file name. */
function urlFileName(url: string): string {
  const raw = new URL(url).pathname.split("/").at(-1) ?? "";
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Lazily loaded catalog and platform, shared by the plans of one command. */
export class Planner {
  #catalog?: Promise<Catalog>;
  #packs?: Promise<Download[]>;
  #digests?: Promise<Map<string, string>>;
  #platform?: Promise<Platform>;
  #host?: Promise<Platform>;
  readonly #download: DownloadTuning;
  readonly #level: X86_64Level;

  /** Creates a planner for `settings`; throws when a {@link DOWNLOAD_ENV} variable or the x86-64 level is malformed. */
  constructor(readonly settings: PlanSettings) {
    this.#download = { ...downloadTuningFromEnv(), ...definedOnly(settings.download) };
    for (const mirror of [settings.mirror ?? []].flat()) if (mirror) mirrorBase(mirror);
    if (settings.platform) parsePlatformOverride(settings.platform);
    this.#level = x86_64LevelSetting(settings.x86_64Level);
  }

  /** The catalog in force (embedded unless `--catalog`); `--offline` refuses an http(s) one. */
  catalog(): Promise<Catalog> {
    return this.#catalog ??= this.#loadCatalog();
  }

  /**
   * The packs the local `--mirror` folders (paths, `file://`) list in their
   * `SHA256SUMS` (`pyprime pack`'s names), first mirror first; a mirror without one (a
   * PBS-layout mirror keeps one per release folder) lists none. An http(s) mirror is
   * not asked: a version request must not cost a request more, nor fail on a server
   * that only a later mirror or no download at all needed. Packs are for this machine:
   * with `--platform` for another one, the archive could not be checked against its name.
   */
  #mirrorPacks(): Promise<Download[]> {
    return this.#packs ??= (async () => {
      if (await this.foreign()) return [];
      const bases = [this.settings.mirror ?? []].flat().filter((m) => m !== "").map(mirrorBase)
        .filter((base) => base.startsWith("file:"));
      const found: Download[] = [];
      for (const base of bases) {
        const { sums } = await readSha256Sums(`${base}/${SUMS_NAME}`, this.#download);
        if (sums) found.push(...packsOf(sums, base));
      }
      return found;
    })();
  }

  #loadCatalog(): Promise<Catalog> {
    const source = this.settings.catalog;
    if (this.settings.offline && source !== undefined && /^https?:\/\//i.test(source)) {
      return Promise.reject(
        new CatalogError(`Cannot read catalog ${source}: offline mode`, {
          hint: "pass a catalog file or file:// URL, or drop --offline",
        }),
      );
    }
    return catalogWithFeed({
      catalog: source,
      offline: this.settings.offline,
      refresh: this.settings.refresh,
      note: this.settings.note,
    });
  }

  /** The catalog's digests by archive file name (`cpython-3.13.9+20251014-….tar.gz`). */
  #catalogDigests(): Promise<Map<string, string>> {
    // A lookup by file name, not a resolution: the catalog as it is here (embedded, or
    // the feed as last cached), so installing a local archive never goes to the network
    // for the versions feed and prints no note about it.
    return this.#digests ??= (async () => {
      // The embedded catalog alone (no other catalog, no cached feed) is read straight
      // from its rows: building its 5,000 downloads took ~70 ms of a pack's install.
      if (!this.#catalog && !this.settings.catalog && !(await cachedFeedExists())) {
        return embeddedDigests();
      }
      const { downloads } = await (this.#catalog ??
        catalogWithFeed({ catalog: this.settings.catalog, offline: true }));
      const digests = new Map<string, string>();
      for (const { url, sha256 } of downloads) {
        const name = urlFileName(url);
        if (sha256 !== null && !digests.has(name)) digests.set(name, sha256);
      }
      return digests;
    })();
  }

  /**
   * {@link #catalogDigests}, except that under `--offline` a catalog that cannot be read
   * (an http one) only means no digest from it: a local archive still installs.
   */
  #namedDigests(): Promise<Map<string, string>> {
    const digests = this.#catalogDigests();
    return this.settings.offline ? digests.catch(() => new Map()) : digests;
  }

  /** The target platform (`--platform`, else detected, at the x86-64 level asked for). */
  platform(): Promise<Platform> {
    return this.#platform ??= this.settings.platform
      ? Promise.resolve(parsePlatformOverride(this.settings.platform))
      : detectPlatform().then((p) => withX86_64Level(p, this.#level));
  }

  /** True when `--platform` names a machine whose interpreters cannot run on this one. */
  async foreign(): Promise<boolean> {
    if (!this.settings.platform) return false;
    // Detecting the host reads /proc/cpuinfo through a subprocess: once per command.
    this.#host ??= detectPlatform();
    const [target, host] = await Promise.all([this.platform(), this.#host]);
    return target.os !== host.os || target.arch !== host.arch || target.libc !== host.libc;
  }

  /**
   * Plans one source.
   *
   * @example
   * ```ts
   * const plan = await new Planner({}).plan("3.13");
   * plan.download?.key; // "cpython-3.13.9-linux-x86_64_v3-gnu"
   * ```
   */
  async plan(spec: string, sha256?: string): Promise<Plan> {
    const request = parseRequest(spec);
    const once = (find: () => Promise<Expected>) => {
      let found: Promise<Expected> | undefined;
      return () => found ??= find();
    };
    switch (request.kind) {
      case "stdin": {
        const expected = once(() =>
          Promise.resolve(
            sha256
              ? { sha256, verified: "option" as const }
              : { verified: "none" as const, reason: "standard input has no file name to look up" },
          )
        );
        return {
          spec,
          label: "standard input",
          request,
          expected,
          open: () => Promise.resolve(openStdin()),
        };
      }
      case "file": {
        const expected = once(() => this.#expect(sha256, basename(request.path), request.path));
        // Opened now, so a missing file fails the command before anything is made.
        const first = await openFile(request.path);
        let opened = false;
        return {
          spec,
          label: spec,
          request,
          expected,
          open: () => {
            if (opened) return openFile(request.path);
            opened = true;
            return Promise.resolve(first);
          },
        };
      }
      case "url": {
        const url = request.url;
        const expected = once(() => this.#expect(sha256, urlFileName(url), url));
        return {
          spec,
          label: redactUrl(url),
          request,
          expected,
          open: async (s, p) => this.#openUrl(url, (await expected()).sha256, s, p),
        };
      }
      default: {
        const platform = await this.platform();
        const options = { prereleases: this.settings.prereleases };
        // A pack in a --mirror folder answers the request before the catalog does.
        const packs = await this.#mirrorPacks();
        const pack = packs.length === 0 ? undefined : matching(
          { source: "--mirror", downloads: packs, newestBuild: "" },
          request,
          platform,
          options,
        )[0];
        const download = pack ?? resolve(await this.catalog(), request, platform, options);
        const urls = pack ? [pack.url] : downloadUrls(download, this.settings.mirror);
        const expected = once(() =>
          pack
            ? Promise.resolve<Expected>(
              sha256
                ? { sha256, verified: "option" }
                : { sha256: pack.sha256!, verified: "sha256sums" },
            )
            : this.#expect(sha256, urlFileName(urls[0]), urls[0], download.sha256 ?? undefined)
        );
        return {
          spec,
          label: spec,
          request,
          download,
          foreign: await this.foreign(),
          expected,
          open: async (s, p) => this.#openFirst(urls, (await expected()).sha256, s, p),
        };
      }
    }
  }

  /**
   * The digest for an archive named `name` at `location`: `--sha256`, else the catalog's
   * (of the resolved download, or of the entry with that file name), else the one the
   * `SHA256SUMS` beside it lists.
   */
  async #expect(
    option: string | undefined,
    name: string,
    location: string,
    fromCatalog?: string,
  ): Promise<Expected> {
    if (option) return { sha256: option, verified: "option" };
    const catalog = fromCatalog ?? (name ? (await this.#namedDigests()).get(name) : undefined);
    if (catalog) return { sha256: catalog, verified: "catalog" };
    if (!name) return { verified: "none", reason: "it has no file name to look up" };
    const sums = await sha256SumsBeside(location, name, {
      ...this.#download,
      offline: this.settings.offline,
    });
    if (sums.sha256) return { sha256: sums.sha256, verified: "sha256sums" };
    return {
      verified: "none",
      reason: `no digest for ${name} in the catalog, and ${sums.where}: ${sums.missing}`,
    };
  }

  /**
   * Opens the first of `urls` that answers. A connection failure, 404 or 5xx (after the
   * retries of that URL) moves on to the next; anything else, and a checksum mismatch
   * (found only after the body), fails at once. The last error names every URL tried.
   */
  async #openFirst(
    urls: string[],
    sha256: string | undefined,
    signal: AbortSignal,
    onProgress?: (n: number, total?: number) => void,
  ): Promise<ArchiveSource> {
    const failures: NetworkError[] = [];
    for (const url of urls) {
      try {
        return await this.#openUrl(url, sha256, signal, onProgress);
      } catch (err) {
        const next = err instanceof NetworkError && !signal.aborted &&
          (err.status === undefined || err.status === 404 || err.status >= 500);
        if (!next || urls.length === 1) throw err;
        failures.push(err);
      }
    }
    const tried = failures.map((f) =>
      f.message.replace(/^Cannot download (\S+): (.*)$/s, "$1 ($2)")
    );
    throw new PyprimeError(`Cannot download from ${tried.join(", nor from ")}`, {
      cause: failures.at(-1),
      hint: failures.at(-1)!.hint,
    });
  }

  async #openUrl(
    url: string,
    sha256: string | undefined,
    signal: AbortSignal,
    onProgress?: (n: number, total?: number) => void,
  ): Promise<ArchiveSource> {
    const opened = await openUrl(url, {
      ...this.#download,
      cacheDir: this.settings.cacheDir,
      offline: this.settings.offline,
      expectedSha256: sha256,
      signal,
      onProgress,
    });
    return {
      stream: opened.stream,
      label: urlFileName(url) || redactUrl(url),
      size: opened.size,
      fromCache: opened.fromCache,
      commit: () => opened.commit(),
      discard: () => opened.discard(),
    };
  }
}
