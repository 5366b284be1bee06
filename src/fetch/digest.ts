/**
 * Streaming sha256: a pass-through stage that hashes every byte it forwards, so
 * the archive is read once for both checksum and extraction.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ChecksumMismatchError, PyprimeError } from "../errors.ts";

/** A hashing pass-through and the digest it yields once the input has ended. */
export interface DigestTap {
  /** Pipe bytes through this. */
  stream: TransformStream<Uint8Array, Uint8Array>;
  /** Lowercase hex sha256 of everything that passed, once the input has ended. */
  digest: Promise<string>;
  /** Bytes seen so far. */
  bytes(): number;
}

/**
 * Creates a sha256 tap.
 *
 * @example
 * ```ts
 * const tap = sha256Tap();
 * await new Response(new Blob(["abc"]).stream().pipeThrough(tap.stream)).arrayBuffer();
 * await tap.digest; // "ba7816bf…"
 * ```
 */
export function sha256Tap(): DigestTap {
  const hash = createHash("sha256");
  let seen = 0;
  let resolve!: (hex: string) => void;
  let reject!: (err: unknown) => void;
  const digest = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Consumers that fail early never await the digest; keep that from being unhandled.
  digest.catch(() => {});
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      hash.update(chunk);
      seen += chunk.length;
      controller.enqueue(chunk);
    },
    flush() {
      resolve(hash.digest("hex"));
    },
    cancel(reason) {
      reject(reason);
    },
  });
  return { stream, digest, bytes: () => seen };
}

/**
 * Normalizes a user-supplied sha256 (hex, optionally `sha256:`-prefixed).
 *
 * @example
 * ```ts
 * normalizeSha256("sha256:ABCD…"); // "abcd…"
 * ```
 */
export function normalizeSha256(value: string): string {
  const hex = value.trim().toLowerCase().replace(/^sha256[:=]/, "");
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new PyprimeError(`Invalid sha256 ${JSON.stringify(value)}: expected 64 hex digits`, {
      exitCode: 2,
      hint: "pass the digest as printed by `sha256sum`",
    });
  }
  return hex;
}

/** Throws {@link ChecksumMismatchError} when `actual` differs from `expected`. */
export function verifySha256(label: string, expected: string | undefined, actual: string): void {
  if (expected !== undefined && expected !== actual) {
    throw new ChecksumMismatchError(label, expected, actual);
  }
}
