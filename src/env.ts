/**
 * Reading configuration from the environment.
 *
 * @module
 */

/**
 * The value of `name`, or `undefined` when it is unset, empty, or not in the
 * permission set (`--allow-env` lists the variables pyprime reads; any other counts
 * as unset rather than failing the run).
 *
 * @example
 * ```ts
 * envValue("PYPRIME_PYTHON_INSTALL_DIR") ?? defaultDir;
 * ```
 */
export function envValue(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}
