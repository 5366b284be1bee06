/**
 * `~/.netrc` (or the file `$NETRC` names), as curl, pip and uv read it: `machine HOST
 * login USER password SECRET` entries; `default` entries and `macdef` blocks are skipped.
 *
 * @module
 */
import { join } from "node:path";
import { envValue } from "../env.ts";

/** A netrc of a few entries is a few hundred bytes; larger files are not read. */
const MAX_NETRC = 1024 * 1024;

/** One entry: `machine` undefined for `default`. */
export interface NetrcEntry {
  /** The host name, or undefined for the `default` entry. */
  machine?: string;
  /** `login`. */
  login?: string;
  /** `password`. */
  password?: string;
}

/**
 * Parses netrc text into its entries, in order.
 *
 * @example
 * ```ts
 * parseNetrc("machine mirror.example login ci password s3cret")[0].login; // "ci"
 * ```
 */
export function parseNetrc(text: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  const lines = text.split(/\r?\n/);
  let entry: NetrcEntry | undefined;
  for (let i = 0; i < lines.length; i++) {
    const tokens = lines[i].replace(/^\s*#.*$/, "").match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
    for (let t = 0; t < tokens.length; t++) {
      const token = tokens[t];
      const value = () => unquote(tokens[++t] ?? "");
      if (token === "machine") entries.push(entry = { machine: value() });
      else if (token === "default") entries.push(entry = {});
      else if (token === "login" && entry) entry.login = value();
      else if (token === "password" && entry) entry.password = value();
      else if (token === "account") t++;
      else if (token === "macdef") {
        // A macro runs to the next empty line.
        while (i + 1 < lines.length && lines[i + 1].trim() !== "") i++;
        break;
      }
    }
  }
  return entries;
}

function unquote(token: string): string {
  return token.startsWith('"') && token.endsWith('"') && token.length >= 2
    ? token.slice(1, -1).replace(/\\(.)/g, "$1")
    : token;
}

let loaded: Promise<NetrcEntry[]> | undefined;

async function readNetrc(): Promise<NetrcEntry[]> {
  const home = envValue("HOME");
  const path = envValue("NETRC") ?? (home === undefined ? undefined : join(home, ".netrc"));
  if (path === undefined) return [];
  try {
    const info = await Deno.stat(path);
    if (!info.isFile || info.size > MAX_NETRC) return [];
    return parseNetrc(await Deno.readTextFile(path));
  } catch {
    // No netrc, or one that cannot be read: no credentials, as curl --netrc-optional.
    return [];
  }
}

/** The `Authorization` value of HTTP Basic auth. */
export function basicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/**
 * The Basic `Authorization` value for `host` from the netrc file, if it has a
 * `machine` entry for it with a login. A `default` entry is not used: it would send
 * the secret to any host a mirror redirects to.
 */
export async function credentialsFor(host: string): Promise<string | undefined> {
  const entries = await (loaded ??= readNetrc());
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  const entry = entries.find((e) => e.machine?.toLowerCase() === name);
  if (entry?.login === undefined) return undefined;
  return basicAuth(entry.login, entry.password ?? "");
}
