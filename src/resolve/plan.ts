/**
 * Turns what the user typed after `pyprime install` into a plan: which bytes to
 * read (a file, stdin, a URL, or a catalog download through a mirror or cache) and
 * which sha256 they must have. Catalog and platform are loaded once, lazily.
 *
 * @module
 */
import { basename } from "node:path";
import { type Catalog, CatalogError, type Download } from "./catalog.ts";
import { downloadUrls, resolve } from "./match.ts";
import { type DownloadOptions, openUrl } from "../fetch/download.ts";
import { NetworkError } from "../fetch/network_error.ts";
import type { ArchiveSource } from "../fetch/source.ts";
import { detectPlatform, parsePlatformOverride, type Platform } from "./platform.ts";
import { catalogWithFeed } from "./feed.ts";
import { withX86_64Level, type X86_64Level, x86_64LevelSetting } from "./x86_64_level.ts";
import { parseRequest, type PythonRequest } from "./request.ts";
import { openFile, openStdin } from "../fetch/source.ts";
import { envValue } from "../env.ts";
import { PyprimeError } from "../errors.ts";

/** Download tuning a plan passes to {@link openUrl}. */
export type DownloadTuning = Pick<
  DownloadOptions,
  "retries" | "backoffMs" | "idleTimeoutMs" | "onRetry"
>;

/**
 * The environment variables that tune downloads, as uv's `UV_HTTP_TIMEOUT` and
 * `UV_HTTP_RETRIES` do; the backoff one exists so tests of faults take seconds.
 */
export const DOWNLOAD_ENV = {
  /** Seconds without a byte before a read counts as a dropped connection (default 30). */
  timeout: "PYPRIME_HTTP_TIMEOUT",
  /** Retries after the first attempt (default 3). */
  retries: "PYPRIME_HTTP_RETRIES",
  /** Base of the exponential backoff in milliseconds (default 500). */
  backoff: "PYPRIME_RETRY_BACKOFF_MS",
} as const;

/** Reads a variable; one the permission set does not grant counts as unset. */
function readEnv(name: string): string | undefined {
  return envValue(name)?.trim() || undefined;
}

function envNumber(name: string, integer: boolean): number | undefined {
  const text = readEnv(name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new PyprimeError(
      `${name} must be a ${integer ? "whole number" : "number"} of 0 or more, not ${text}`,
      { exitCode: 2, hint: `unset ${name} or give it a number` },
    );
  }
  return value;
}

/**
 * Download tuning from {@link DOWNLOAD_ENV}; unset variables are left out, so
 * the download defaults apply.
 *
 * @example
 * ```ts
 * // PYPRIME_HTTP_TIMEOUT=2 PYPRIME_HTTP_RETRIES=1
 * downloadTuningFromEnv(); // { idleTimeoutMs: 2000, retries: 1 }
 * ```
 */
export function downloadTuningFromEnv(): DownloadTuning {
  const tuning: DownloadTuning = {};
  const timeout = envNumber(DOWNLOAD_ENV.timeout, false);
  if (timeout !== undefined) tuning.idleTimeoutMs = Math.max(1, Math.round(timeout * 1000));
  const retries = envNumber(DOWNLOAD_ENV.retries, true);
  if (retries !== undefined) tuning.retries = retries;
  const backoff = envNumber(DOWNLOAD_ENV.backoff, false);
  if (backoff !== undefined) tuning.backoffMs = backoff;
  return tuning;
}

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

/** One source, resolved but not yet opened. */
export interface Plan {
  /** What the user typed. */
  spec: string;
  /** The parsed request. */
  request: PythonRequest;
  /** The catalog entry, for version and key requests. */
  download?: Download;
  /** The sha256 the bytes must have, when known. */
  sha256?: string;
  /**
   * The download is for another machine (`--platform` names another OS, architecture or
   * libc): its interpreter cannot be run here to be probed or to compile bytecode.
   */
  foreign?: boolean;
  /** Opens the bytes; may be called again to start over. */
  open(
    signal: AbortSignal,
    onProgress?: (n: number, total?: number) => void,
  ): Promise<ArchiveSource>;
}

/** Lazily loaded catalog and platform, shared by the plans of one command. */
export class Planner {
  #catalog?: Promise<Catalog>;
  #platform?: Promise<Platform>;
  #host?: Promise<Platform>;
  readonly #download: DownloadTuning;
  readonly #level: X86_64Level;

  /** Creates a planner for `settings`; throws when a {@link DOWNLOAD_ENV} variable or the x86-64 level is malformed. */
  constructor(readonly settings: PlanSettings) {
    this.#download = { ...downloadTuningFromEnv(), ...definedOnly(settings.download) };
    this.#level = x86_64LevelSetting(settings.x86_64Level);
  }

  /** The catalog in force (embedded unless `--catalog`); `--offline` refuses an http(s) one. */
  catalog(): Promise<Catalog> {
    return this.#catalog ??= this.#loadCatalog();
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
    switch (request.kind) {
      case "stdin":
        return { spec, request, sha256, open: () => Promise.resolve(openStdin()) };
      case "file":
        return { spec, request, sha256, open: () => openFile(request.path) };
      case "url":
        return { spec, request, sha256, open: (s, p) => this.#openUrl(request.url, sha256, s, p) };
      default: {
        const download = resolve(await this.catalog(), request, await this.platform(), {
          prereleases: this.settings.prereleases,
        });
        const expected = sha256 ?? download.sha256 ?? undefined;
        const urls = downloadUrls(download, this.settings.mirror);
        return {
          spec,
          request,
          download,
          sha256: expected,
          foreign: await this.foreign(),
          open: (s, p) => this.#openFirst(urls, expected, s, p),
        };
      }
    }
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
      label: decodeURIComponent(basename(new URL(url).pathname)),
      size: opened.size,
      fromCache: opened.fromCache,
      commit: () => opened.commit(),
      discard: () => opened.discard(),
    };
  }
}
