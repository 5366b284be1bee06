/**
 * Short names over `node:assert/strict` for the tests.
 *
 * @module
 */
import assertStrict from "node:assert/strict";

// node's typings take no message or a string, never `undefined`; at run time an
// undefined message means "use the default", so the cast is safe.
const text = (message?: string) => message as string;

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  assertStrict.ok(value, text(message));
}

/** Fails unless `actual` deep-equals `expected`. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assertStrict.deepStrictEqual(actual, expected, text(message));
}

/** Fails unless `text` matches `pattern`. */
export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  assertStrict.match(actual, pattern, text(message));
}

/** Fails if `text` matches `pattern`. */
export function assertNotMatch(actual: string, pattern: RegExp, message?: string): void {
  assertStrict.doesNotMatch(actual, pattern, text(message));
}
