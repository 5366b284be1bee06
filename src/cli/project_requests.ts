/**
 * The requests of `install` and `find` without arguments: the project's, or a usage
 * error saying how to name one.
 *
 * @module
 */
import { printable, PyprimeError } from "../errors.ts";
import { projectRequests } from "../resolve/project.ts";
import type { Output } from "./output.ts";

/**
 * The project's requests around the working directory, logged with their source; a
 * usage error (exit 2) when nothing asks for a Python.
 *
 * @example
 * ```ts
 * const sources = await requiredProjectRequests(new Output());
 * ```
 */
export async function requiredProjectRequests(out: Output): Promise<string[]> {
  const project = await projectRequests(Deno.cwd());
  if (project === undefined) {
    throw new PyprimeError("No Python requested", {
      exitCode: 2,
      hint: "name one (pyprime install 3.13), pin one (pyprime pin 3.13), set PYPRIME_PYTHON, " +
        "or add requires-python to pyproject.toml",
    });
  }
  out.info(`Using ${printable(project.requests.join(", "))} from ${printable(project.source)}`);
  return project.requests;
}
