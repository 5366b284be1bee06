/**
 * Runs the CLI the way users run the binary: `deno run` with exactly the
 * permission set of the `pyprime` task (never -A), as a subprocess.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { permissionFlags } from "../../scripts/permissions.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** What a CLI run produced. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Signal that ended the process, if any. */
  signal: Deno.Signal | null;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Options of {@link runCli}. */
export interface CliOptions {
  /** Extra environment variables, on top of {@link cliEnv}'s shell-like environment. */
  env?: Record<string, string>;
  /** Bytes or a file streamed to standard input. */
  stdin?: Uint8Array | string;
  /** Working directory. */
  cwd?: string;
}

/**
 * The environment of an interactive shell on a CI runner, which is what users run
 * pyprime in: a colour terminal type, a locale, a width, the variables CI systems
 * export, and the caller's PATH, HOME and Deno cache (so npm packages are not fetched
 * again). No `NO_COLOR`: only the tests about colour set it. `FORCE_COLOR` and
 * `CLICOLOR_FORCE` are not set here because they colour every stderr line on purpose;
 * {@link SHELL_MATRIX} runs every command with them too.
 */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = Deno.env.get("HOME") ?? "/root";
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`,
    DENO_NO_UPDATE_CHECK: "1",
    HOME: home,
    USER: "root",
    LOGNAME: "root",
    SHELL: "/bin/bash",
    TERM: "xterm-256color",
    COLORTERM: "truecolor",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    COLUMNS: "80",
    LINES: "24",
    CI: "true",
    GITHUB_ACTIONS: "true",
    PYTHONDONTWRITEBYTECODE: "1",
    PYTHONPATH: "/nonexistent/site",
    ...extra,
  };
}

/** Every command pyprime has, as `pyprime <name> --help` takes them. */
export const COMMANDS: readonly string[] = [
  "install",
  "upgrade",
  "compile",
  "pack",
  "list",
  "find",
  "uninstall",
  "dir",
  "pin",
  "self-check",
];

/** Extra variables real shells and CI systems set, each combination a CLI test runs under. */
export const SHELL_MATRIX: readonly Record<string, string>[] = [
  {},
  { FORCE_COLOR: "1", CLICOLOR_FORCE: "1" },
  { FORCE_COLOR: "0" },
  { NO_COLOR: "1" },
  { TERM: "dumb" },
];

/** The arguments of `deno` that run pyprime: `run`, the binary's permission flags, main.ts. */
export async function mainArgs(): Promise<string[]> {
  return ["run", ...(await permissionFlags()), MAIN];
}

/** Builds the `deno run <flags> main.ts <args>` command. */
export async function cliCommand(
  args: string[],
  options: CliOptions = {},
  stdin: "piped" | "null" = "null",
): Promise<Deno.Command> {
  return new Deno.Command(Deno.execPath(), {
    args: [...(await mainArgs()), ...args],
    clearEnv: true,
    env: cliEnv(options.env),
    cwd: options.cwd,
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs `pyprime <args>` and collects its output.
 *
 * @example
 * ```ts
 * const { code, stdout } = await runCli(["dir", "--install-dir", "/tmp/x"]);
 * ```
 */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = (await cliCommand(args, options, options.stdin ? "piped" : "null")).spawn();
  if (options.stdin !== undefined) {
    if (typeof options.stdin === "string") {
      const file = await Deno.open(options.stdin);
      // A CLI that refuses before reading stdin closes it: not the test's failure.
      await file.readable.pipeTo(child.stdin).catch(() => {});
    } else {
      const writer = child.stdin.getWriter();
      await writer.write(options.stdin).catch(() => {});
      await writer.close().catch(() => {});
    }
  }
  return decodeOutput(await child.output());
}

/**
 * Deno's own note that it fetched npm metadata while running pyprime from source
 * (`Download https://registry.npmjs.org/commander`). It comes from `deno run`, not from
 * pyprime: a compiled binary embeds its npm packages and never prints it. Deno 2.9 may
 * fetch a package's metadata again on any run when its cache lacks it (a fresh
 * DENO_DIR), so exactly these lines are dropped from what a test sees; nothing else is.
 */
const SGR = "(?:\u001b\\[[0-9;]*m)*";
const DENO_DOWNLOAD = new RegExp(
  `^${SGR}Download${SGR} https://registry\\.npmjs\\.org/\\S+\\n`,
  "gm",
);

/** `text` without Deno's npm download lines (see {@link DENO_DOWNLOAD}). */
export function withoutDenoDownloads(text: string): string {
  return text.replace(DENO_DOWNLOAD, "");
}

/** A finished process's exit code, signal and decoded output. */
export function decodeOutput(output: Deno.CommandOutput): CliResult {
  const decoder = new TextDecoder();
  return {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: withoutDenoDownloads(decoder.decode(output.stderr)),
  };
}

/** Words quoted for `sh -c`. */
export function shellQuote(words: string[]): string {
  return words.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
}

/** The `sh -c` command line that runs `pyprime ARGS` from source with the binary's flags. */
export async function shellCommand(args: string[]): Promise<string> {
  return shellQuote([Deno.execPath(), ...(await mainArgs()), ...args]);
}

/** Options of {@link runOnPty}. */
export interface PtyOptions {
  /** Extra environment variables, on top of {@link cliEnv}. */
  env?: Record<string, string>;
  /** The terminal's width (`stty cols`); script(1)'s default otherwise. */
  columns?: number;
  /** A file redirected to standard input instead of the terminal. */
  stdin?: string;
}

/**
 * Runs `pyprime ARGS` under script(1), so stdin, stdout and stderr are a pseudo-terminal;
 * what the terminal showed comes back as `screen`.
 */
export async function runOnPty(
  args: string[],
  options: PtyOptions = {},
): Promise<{ code: number; screen: string }> {
  const size = options.columns ? `stty cols ${options.columns} rows 24; ` : "";
  const redirect = options.stdin ? ` < ${shellQuote([options.stdin])}` : "";
  const out = await new Deno.Command("script", {
    args: ["-qec", `${size}${await shellCommand(args)}${redirect}`, "/dev/null"],
    clearEnv: true,
    env: cliEnv(options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, screen: new TextDecoder().decode(out.stdout) };
}
