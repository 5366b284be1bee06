/**
 * Ctrl-C and `kill`: SIGINT and SIGTERM become an abort of the running command, so
 * every stage stops, kills its child processes and removes what it staged.
 *
 * @module
 */
import { InterruptedError } from "./errors.ts";

/** Aborts `controller` on SIGINT/SIGTERM; returns the function that stops listening. */
export function abortOnSignals(controller: AbortController): () => void {
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = () => controller.abort(new InterruptedError(signal));
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => handlers.forEach(([s, h]) => Deno.removeSignalListener(s, h));
}
