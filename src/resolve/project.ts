/**
 * What Python a project asks for when the command line names none: `PYPRIME_PYTHON`,
 * else `.python-versions` / `.python-version` found from the working directory upward
 * (uv's files and rules: one request per line, `#` comments and blank lines ignored),
 * else (beyond uv) `[project] requires-python` of the nearest `pyproject.toml`.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { envValue } from "../env.ts";
import { printable, PyprimeError } from "../errors.ts";
import { parseRequest } from "./request.ts";

/** The version files, in the order uv reads them in one folder. */
export const VERSION_FILES = [".python-versions", ".python-version"] as const;

/** Project files are small; anything bigger is not one, and is not read whole. */
const MAX_FILE_BYTES = 1024 * 1024;

/** Where the requests came from, and the requests. */
export interface ProjectRequests {
  /** The requests, in file order. */
  requests: string[];
  /** `PYPRIME_PYTHON`, or the file's absolute path. */
  source: string;
}

/**
 * The requests of a `.python-version(s)` file's text, as uv reads it.
 *
 * @example
 * ```ts
 * parseVersionFile("# pinned\n3.13\n\n3.12\n"); // ["3.13", "3.12"]
 * ```
 */
export function parseVersionFile(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("#")
  );
}

async function readSmall(path: string): Promise<string | undefined> {
  // Only a regular file is opened: a FIFO of that name would block the open forever.
  const info = await Deno.stat(path).catch(() => undefined);
  if (!info?.isFile) return undefined;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return undefined;
  }
  try {
    const info = await file.stat();
    if (!info.isFile) return undefined;
    if (info.size > MAX_FILE_BYTES) {
      throw new PyprimeError(
        `Cannot read ${path}: ${info.size} bytes is too big for a project file`,
        {
          exitCode: 2,
          hint: "a .python-version or pyproject.toml is a few lines long",
        },
      );
    }
    const buffer = new Uint8Array(info.size);
    let read = 0;
    while (read < buffer.length) {
      const n = await file.read(buffer.subarray(read));
      if (n === null) break;
      read += n;
    }
    return new TextDecoder().decode(buffer.subarray(0, read));
  } finally {
    file.close();
  }
}

function ancestors(start: string): string[] {
  const out: string[] = [];
  for (let dir = resolve(start);; dir = dirname(dir)) {
    out.push(dir);
    if (dirname(dir) === dir) return out;
  }
}

function requiresPython(text: string, path: string): string | undefined {
  let data: Record<string, unknown>;
  try {
    data = parseToml(text) as Record<string, unknown>;
  } catch (cause) {
    throw new PyprimeError(`Cannot read ${path}: ${(cause as Error).message.split("\n")[0]}`, {
      cause,
      exitCode: 2,
      hint: "fix the TOML, or name a Python on the command line",
    });
  }
  const project = data.project;
  if (typeof project !== "object" || project === null) return undefined;
  const value = (project as Record<string, unknown>)["requires-python"];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.trim() === "") {
    throw new PyprimeError(`Cannot read ${path}: [project] requires-python is not a string`, {
      exitCode: 2,
      hint: 'write it as a PEP 440 specifier, e.g. requires-python = ">=3.12"',
    });
  }
  return value.trim();
}

/**
 * Project files name Pythons, never archives: a path, URL or `-` in a cloned repo's
 * `.python-version` would make `pyprime install` run that archive's interpreter.
 * Anything that is not a version or key request is a usage error naming the file.
 */
function checked(requests: string[], source: string): ProjectRequests {
  for (const request of requests) {
    let kind: string;
    try {
      kind = parseRequest(request, { exists: () => false }).kind;
    } catch (cause) {
      throw new PyprimeError(
        `${source} asks for ${JSON.stringify(printable(request))}, which is not a Python request`,
        {
          cause,
          exitCode: 2,
          hint: "write a version such as 3.13, or a key; see pyprime install --help",
        },
      );
    }
    if (kind !== "version" && kind !== "key") {
      throw new PyprimeError(
        `${source} names an archive (${JSON.stringify(printable(request))}), not a Python version`,
        {
          exitCode: 2,
          hint: "project files may only name versions or keys; install archives by naming them " +
            "on the command line",
        },
      );
    }
  }
  return { requests, source };
}

/**
 * The requests the project around `cwd` makes, or `undefined` when nothing asks for
 * a Python. Version files anywhere up the tree win over every `pyproject.toml`, as in
 * uv, where `requires-python` is only a constraint.
 *
 * @example
 * ```ts
 * (await projectRequests(Deno.cwd()))?.requests; // ["3.13"]
 * ```
 */
export async function projectRequests(cwd: string): Promise<ProjectRequests | undefined> {
  const fromEnv = envValue("PYPRIME_PYTHON");
  if (fromEnv !== undefined) {
    // One request per line, as in the files: a comma belongs to specifiers (>=3.12,<3.13).
    return checked(parseVersionFile(fromEnv), "PYPRIME_PYTHON");
  }
  const dirs = ancestors(cwd);
  for (const dir of dirs) {
    for (const name of VERSION_FILES) {
      const path = join(dir, name);
      const text = await readSmall(path);
      if (text === undefined) continue;
      const requests = parseVersionFile(text);
      if (requests.length === 0) {
        throw new PyprimeError(`${path} names no Python`, {
          exitCode: 2,
          hint: "write a version such as 3.13 in it, or remove it",
        });
      }
      // As uv: `install` takes every line, `find` the first.
      return checked(requests, path);
    }
  }
  for (const dir of dirs) {
    const path = join(dir, "pyproject.toml");
    const text = await readSmall(path);
    if (text === undefined) continue;
    const spec = requiresPython(text, path);
    if (spec !== undefined) return checked([spec], path);
  }
  return undefined;
}

/**
 * `pyprime pin REQUEST`: writes `.python-version` in `dir` (atomically), as
 * `uv python pin` does; returns its path.
 *
 * @example
 * ```ts
 * await writePin(Deno.cwd(), "3.13");
 * ```
 */
export async function writePin(dir: string, request: string): Promise<string> {
  const path = join(dir, ".python-version");
  const temp = join(dir, `.python-version.${crypto.randomUUID().slice(0, 8)}.tmp`);
  try {
    await Deno.writeTextFile(temp, `${request}\n`);
    await Deno.rename(temp, path);
  } catch (cause) {
    await Deno.remove(temp).catch(() => {});
    throw new PyprimeError(`Cannot write ${path}: ${(cause as Error).message}`, {
      cause,
      hint: "run pyprime pin in a folder you can write",
    });
  }
  return path;
}
