/**
 * The ceilings of an extraction: how many bytes, entries and path bytes an archive may
 * have before it is refused.
 *
 * @module
 */
import { UnsafeEntryError } from "../errors.ts";
import { LIMIT_FLAGS, limitError } from "./entry_policy.ts";

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

/**
 * Tar bytes allowed per entry on top of its body (with twice the path limit added):
 * its header, a PAX or GNU long-name header carrying a path and a link target, the
 * padding of each.
 */
const HEADER_ALLOWANCE = 4 * 512 + 512;
/** Read-ahead of the decoder and the pipes, and the padding after end-of-archive. */
const STREAM_SLACK = 16 * 1024 * 1024;

/** The limits: the defaults, with only the overrides that are set (an `undefined` keeps the default). */
export function effectiveLimits(overrides: Partial<ExtractLimits> = {}): ExtractLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(limits) as (keyof ExtractLimits)[]) {
    const value = overrides[key];
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}

/**
 * The byte budget of one tar stream: declared bodies (refused at the header when over
 * `maxTotalBytes`, skipped ones included since they are read all the same), and the
 * whole stream, which may be only as long as its entries explain: their bodies with
 * padding, a header allowance per entry (PAX and long-name headers with paths up to the
 * limit) and some slack for read-ahead and end-of-archive padding. Bytes after the
 * end-of-archive blocks count against it as well.
 */
export class StreamBudget {
  /** Declared body bytes, unpadded: what `maxTotalBytes` is about. */
  #bodies = 0;
  /** Declared body bytes, padded to 512-byte blocks. */
  #declared = 0;
  #entries = 0;
  #streamBytes = 0;

  constructor(readonly limits: ExtractLimits, readonly label: string) {}

  /** Charges entry `name`'s declared `size`; throws when it is over what is left. */
  declare(name: string, size: number, entries: number): void {
    const n = Number.isFinite(size) && size > 0 ? size : 0;
    this.#entries = entries;
    if (this.#bodies + n > this.limits.maxTotalBytes) {
      throw limitError(
        name,
        "maxTotalBytes",
        `it declares ${n} bytes, over what is left of the limit of ${this.limits.maxTotalBytes} bytes in total`,
      );
    }
    this.#bodies += n;
    this.#declared += Math.ceil(n / 512) * 512;
  }

  /** A pass-through that counts the tar bytes and refuses a stream over the budget. */
  counter(): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: (chunk, controller) => {
        this.#streamBytes += chunk.length;
        this.#check();
        controller.enqueue(chunk);
      },
    });
  }

  #check(): void {
    const perEntry = HEADER_ALLOWANCE + 2 * this.limits.maxPathLength;
    const allowed = this.#declared + (this.#entries + 2) * perEntry + STREAM_SLACK;
    if (this.#streamBytes <= allowed) return;
    throw new UnsafeEntryError(
      this.label,
      `the tar stream goes on for more than ${
        STREAM_SLACK / 1024 / 1024
      } MiB past what its entries hold, e.g. after the end of the archive (${LIMIT_FLAGS.maxTotalBytes})`,
      { hint: `if you trust this archive, raise the limit with ${LIMIT_FLAGS.maxTotalBytes}` },
    );
  }
}
