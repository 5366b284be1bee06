/**
 * Download tuning from the environment: `PYPRIME_HTTP_TIMEOUT`, `PYPRIME_HTTP_RETRIES`
 * and `PYPRIME_RETRY_BACKOFF_MS`, as uv's `UV_HTTP_TIMEOUT` and `UV_HTTP_RETRIES`.
 *
 * @module
 */
import type { DownloadOptions } from "./download.ts";
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
