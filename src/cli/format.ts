/**
 * The few words and numbers every message shares: counts with the right plural and one
 * way of writing durations.
 *
 * @module
 */

/**
 * `count` with `noun`, pluralised in English: `1 file`, `2 files`, `1,234 files`.
 *
 * @example
 * ```ts
 * plural(1, "attempt"); // "1 attempt"
 * ```
 */
export function plural(count: number, noun: string, many = `${noun}s`): string {
  return `${count.toLocaleString("en-US")} ${count === 1 ? noun : many}`;
}

/**
 * A duration in seconds, the one format of every message: `0.37s`, `12.50s`.
 *
 * @example
 * ```ts
 * seconds(0.3712); // "0.37s"
 * ```
 */
export function seconds(value: number): string {
  return `${value.toFixed(2)}s`;
}
