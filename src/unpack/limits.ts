/**
 * The ceilings of an extraction: how many bytes, entries and path bytes an archive may
 * have before it is refused.
 *
 * @module
 */

/** Ceilings that stop a hostile or broken archive from filling the disk. */
export interface ExtractLimits {
  /** Total bytes of all regular-file bodies. */
  maxTotalBytes: number;
  /** Number of archive entries, skipped ones included. */
  maxEntries: number;
  /** Bytes of an entry's UTF-8 path relative to the destination (and of a link target). */
  maxPathLength: number;
}

/** Limits that fit any real python-build-standalone archive with a wide margin. */
export const DEFAULT_LIMITS: ExtractLimits = Object.freeze({
  maxTotalBytes: 8 * 1024 ** 3,
  maxEntries: 500_000,
  maxPathLength: 4096,
});
