/**
 * Catalog entries for tests, in uv's `download-metadata.json` format, which pyprime
 * reads with `--catalog`.
 *
 * @module
 */
import { PBS_PREFIX } from "../../src/resolve/catalog.ts";

/** What a test says about one download; the rest is a Linux gnu CPython. */
export interface EntryOptions {
  /** `3.14.10`, optionally with a pre-release (`3.15.0rc2`). */
  version: string;
  /** The PBS release tag, e.g. `20261120`. */
  build: string;
  /** The archive's file name, as the release folder holds it. */
  file: string;
  /** Its sha256; `null` for an entry PBS published none for. */
  sha256: string | null;
  /** Architecture family; `x86_64` by default. */
  arch?: string;
  /** x86-64 level (`v3`); the baseline by default. */
  archVariant?: string | null;
  /** The URL prefix of the release folders; PBS's GitHub releases by default. */
  prefix?: string;
}

/**
 * One entry of uv's download metadata, with a GitHub PBS URL (`--mirror` maps it).
 *
 * @example
 * ```ts
 * uvEntry({ version: "3.14.10", build: "20261120", file: name, sha256 });
 * ```
 */
export function uvEntry(options: EntryOptions): Record<string, unknown> {
  const m = /^(\d+)\.(\d+)\.(\d+)(.*)$/.exec(options.version)!;
  return {
    name: "cpython",
    arch: { family: options.arch ?? "x86_64", variant: options.archVariant ?? null },
    os: "linux",
    libc: "gnu",
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    prerelease: m[4],
    url: `${options.prefix ?? PBS_PREFIX}${options.build}/${encodeURIComponent(options.file)}`,
    sha256: options.sha256,
    variant: null,
    build: options.build,
  };
}
