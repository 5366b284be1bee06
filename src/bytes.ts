/**
 * Joining byte chunks, which the archive reader, the zstd framer and the bounded child
 * output all need.
 *
 * @module
 */

/**
 * Joins `chunks` of `size` bytes in all; the one chunk itself when there is only one.
 *
 * @example
 * ```ts
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])], 3); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
