/**
 * Archive file name to sha256, for the lookup that installing a local archive makes:
 * read straight from the embedded catalog's compact rows.
 *
 * @module
 */
import embedded from "./catalog.json" with { type: "json" };
import type { CompactCatalog } from "./catalog.ts";

/**
 * The sha256 of each download of the embedded catalog by archive file name (decoded,
 * e.g. `cpython-3.13.9+20251014-x86_64-unknown-linux-gnu-install_only.tar.gz`), read
 * straight from the compact rows: what `pyprime install ./archive` looks its name up in.
 *
 * @example
 * ```ts
 * embeddedDigests().get("cpython-3.13.9+20251014-x86_64-unknown-linux-gnu-install_only.tar.gz");
 * ```
 */
export function embeddedDigests(): Map<string, string> {
  const { targets, downloads } = embedded as unknown as CompactCatalog;
  const digests = new Map<string, string>();
  for (const [version, build, target, sha256] of downloads) {
    const template = targets[target][5];
    const raw = template.slice(template.lastIndexOf("/") + 1)
      .replaceAll("{v}", version).replaceAll("{b}", build);
    let name = raw;
    try {
      name = decodeURIComponent(raw);
    } catch { /* kept as written, as a URL's file name is */ }
    if (sha256 !== null && !digests.has(name)) digests.set(name, sha256);
  }
  return digests;
}
