/**
 * `pyprime pin [REQUEST]`: writes `.python-version` in the working directory, as
 * `uv python pin` does; without a request, prints the pin in force and its file.
 *
 * @module
 */
import { PyprimeError } from "../errors.ts";
import { projectRequests, writePin } from "../resolve/project.ts";
import { parseRequest } from "../resolve/request.ts";
import type { Output } from "./output.ts";

/**
 * Runs `pin`; returns the exit code.
 *
 * @example
 * ```ts
 * await runPin("3.13", new Output());
 * ```
 */
export async function runPin(request: string | undefined, out: Output): Promise<number> {
  if (request === undefined) {
    const project = await projectRequests(Deno.cwd());
    if (project === undefined) {
      out.error("No Python is pinned here", "pin one: pyprime pin 3.13");
      out.jsonData(null);
      return 1;
    }
    for (const r of project.requests) out.data(r);
    out.jsonData(project);
    return 0;
  }
  const parsed = parseRequest(request);
  if (parsed.kind !== "version" && parsed.kind !== "key") {
    throw new PyprimeError(`Cannot pin ${JSON.stringify(request)}: not a version or key`, {
      exitCode: 2,
      hint: "pin a version such as 3.13, 3.13t or cpython-3.13.9; files and URLs cannot be pinned",
    });
  }
  const path = await writePin(Deno.cwd(), request.trim());
  out.info(`Pinned ${request.trim()} in ${path}`);
  out.jsonData({ request: request.trim(), path });
  return 0;
}
