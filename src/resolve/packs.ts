/**
 * Packs in a `--mirror` folder: `pyprime pack` names its archives like PBS's
 * (`cpython-<version>+pyprime-<triple>[-<variant>]-install_only.tar.zst`) and lists them
 * in the folder's `SHA256SUMS`, so a folder (or an HTTP server) of packs can answer
 * version requests without a catalog.
 *
 * @module
 */
import { createDownload, type Download } from "./catalog.ts";
import { normalizeArch, normalizeOs } from "./platform.ts";
import type { Variant } from "./request.ts";
import { parseVersion } from "./version.ts";

/** The `build` of a pack's download: not a PBS release, recorded as `local`. */
export const PACK_BUILD = "local";

const PACK_NAME =
  /^cpython-([0-9]+\.[0-9]+\.[0-9]+(?:(?:a|b|rc)[0-9]+)?)\+pyprime-([a-z0-9_]+(?:-[a-z0-9_]+){2,3}?)(?:-(freethreaded\+debug|freethreaded|debug))?-install_only\.tar\.(?:zst|gz)$/;

/**
 * The download a pack's file name describes, at `base/<name>` with `sha256`; undefined
 * for a name that is not a pack's or names an unknown platform.
 *
 * @example
 * ```ts
 * packDownload("cpython-3.12.1+pyprime-x86_64-unknown-linux-gnu-install_only.tar.zst",
 *   "a".repeat(64), "file:///srv/packs")?.key; // "cpython-3.12.1-linux-x86_64-gnu"
 * ```
 */
export function packDownload(name: string, sha256: string, base: string): Download | undefined {
  const match = PACK_NAME.exec(name);
  const version = match ? parseVersion(match[1]) : undefined;
  if (!match || !version) return undefined;
  const [archName, vendor, system, libcName] = match[2].split("-");
  const os = normalizeOs(vendor === "apple" ? "darwin" : system ?? "");
  const arch = normalizeArch(archName);
  if (os === undefined || arch === undefined) return undefined;
  const libc = os === "linux" ? libcName ?? "" : "none";
  if (!libc) return undefined;
  return createDownload({
    version,
    os,
    ...arch,
    libc,
    variant: (match[3] ?? null) as Variant,
    build: PACK_BUILD,
    url: `${base}/${encodeURIComponent(name)}`,
    sha256,
    flavour: "install_only",
  });
}

/**
 * The packs a `SHA256SUMS` lists (other names are skipped), at `base/<name>`.
 *
 * @example
 * ```ts
 * packsOf(new Map([[name, hex]]), "https://packs.internal");
 * ```
 */
export function packsOf(sums: Map<string, string>, base: string): Download[] {
  return [...sums].flatMap(([name, sha256]) => packDownload(name, sha256, base) ?? []);
}
