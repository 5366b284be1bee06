/**
 * pyprime: install python-build-standalone CPython with a compiled standard library.
 * This file only parses arguments, dispatches, and maps errors to exit codes.
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import config from "./deno.json" with { type: "json" };
import type { BytecodeSettings, InvalidationMode } from "./src/bytecode/settings.ts";
import type { InstallCommandOptions } from "./src/cli/install.ts";
import { envValue as env } from "./src/env.ts";
import { BrokenPipeError, causeChain, PyprimeError, refusedPath } from "./src/errors.ts";
import { Output } from "./src/cli/output.ts";

interface GlobalFlags {
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  progress?: boolean;
  color?: "auto" | "always" | "never";
}

/** Flags every bytecode-compiling command shares. */
interface BytecodeFlags {
  optimize: string;
  invalidationMode?: string;
  jobs?: string;
  exclude: string[];
  compileTimeout: string;
}

function outputFor(flags: GlobalFlags): Output {
  if (flags.quiet && flags.verbose) {
    throw usage("-q/--quiet and -v/--verbose exclude each other", "pass one of them");
  }
  const verbosity = flags.quiet ? "quiet" : flags.verbose ? "verbose" : "normal";
  return new Output({
    verbosity,
    json: flags.json,
    progress: flags.progress === false ? false : undefined,
    color: flags.color === "always" ? true : flags.color === "never" ? false : undefined,
  });
}

function usage(message: string, hint?: string): PyprimeError {
  return new PyprimeError(message, { exitCode: 2, hint });
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw usage(`${flag} takes a whole number above 0, not ${value}`);
  }
  return n;
}

function bytecodeSettings(flags: BytecodeFlags): BytecodeSettings {
  const optimize = [...new Set(flags.optimize.split(",").map((s) => s.trim()))].map((s) => {
    if (!["0", "1", "2"].includes(s)) throw usage(`--optimize takes 0, 1 and 2, not ${s}`);
    return Number(s);
  });
  const mode = flags.invalidationMode ??
    (Deno.env.get("SOURCE_DATE_EPOCH") ? "checked-hash" : "timestamp");
  if (!["timestamp", "checked-hash", "unchecked-hash"].includes(mode)) {
    throw usage(`--invalidation-mode takes timestamp, checked-hash or unchecked-hash, not ${mode}`);
  }
  const exclude = flags.exclude.map((source) => {
    try {
      return new RegExp(source);
    } catch (err) {
      throw usage(`--exclude ${source} is not a regular expression: ${(err as Error).message}`);
    }
  });
  return {
    optimize: optimize.sort(),
    invalidationMode: mode as InvalidationMode,
    jobs: flags.jobs === undefined ? undefined : positiveInt(flags.jobs, "--jobs"),
    exclude,
    timeoutSeconds: positiveInt(flags.compileTimeout, "--compile-timeout"),
  };
}

function withBytecodeFlags(cmd: Command): Command {
  return cmd
    .option("--optimize <levels>", "optimization levels to write: comma list of 0, 1, 2", "0")
    .addOption(
      new Option("--invalidation-mode <mode>", "how .pyc files are checked against sources")
        .choices(["timestamp", "checked-hash", "unchecked-hash"]),
    )
    .option("-j, --jobs <n>", "bytecode workers (default: number of CPUs)")
    .option("--exclude <regex>", "skip paths matching REGEX (repeatable)", collect, [])
    .option("--compile-timeout <seconds>", "per-file compile timeout", "60");
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function compileByDefault(): boolean {
  const value = Deno.env.get("PYPRIME_COMPILE_BYTECODE");
  if (value === undefined || value === "") return true;
  if (["0", "false", "no", "off"].includes(value.toLowerCase())) return false;
  if (["1", "true", "yes", "on"].includes(value.toLowerCase())) return true;
  throw usage(`PYPRIME_COMPILE_BYTECODE must be 0 or 1, not ${value}`);
}

/** `--require-hashes`, else `PYPRIME_REQUIRE_HASHES` (1/true/yes/on or 0/false/no/off). */
function requireHashes(flag: boolean | undefined): boolean {
  if (flag) return true;
  const value = env("PYPRIME_REQUIRE_HASHES");
  if (value === undefined) return false;
  if (["0", "false", "no", "off"].includes(value.toLowerCase())) return false;
  if (["1", "true", "yes", "on"].includes(value.toLowerCase())) return true;
  throw usage(`PYPRIME_REQUIRE_HASHES must be 0 or 1, not ${value}`);
}

function limitFlag(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : positiveInt(value, flag);
}

/** The options `install` and `upgrade` share. */
function withInstallFlags(cmd: Command): Command {
  return withBytecodeFlags(
    cmd
      .option("--install-dir <dir>", "where installations live [env: PYPRIME_PYTHON_INSTALL_DIR]")
      .option(
        "--require-hashes",
        "refuse archives with no digest to check [env: PYPRIME_REQUIRE_HASHES=1]",
      )
      .option("--compile-bytecode", "compile the standard library (default)")
      .option("--no-compile-bytecode", "do not compile [env: PYPRIME_COMPILE_BYTECODE=0]")
      .option("--max-unpacked-size <bytes>", "refuse archives that unpack to more")
      .option("--max-entries <n>", "refuse archives with more entries")
      .option("--max-path-length <n>", "refuse entries with longer paths")
      .option(
        "--mirror <url>",
        "python-build-standalone mirror; repeat to fall back in order [env: PYPRIME_PYTHON_INSTALL_MIRROR]",
        (value: string, previous?: string[]) => [...(previous ?? []), value],
      )
      .option("--cache-dir <dir>", "keep downloads here and reuse them [env: PYPRIME_CACHE_DIR]")
      .option("--offline", "never use the network")
      .option("--catalog <file-or-url>", "use this download catalog [env: PYPRIME_CATALOG]")
      .option("--platform <os-arch-libc>", "install for another platform, e.g. linux-aarch64-gnu")
      .option("--prerelease", "allow pre-releases for version requests")
      .option(
        "--refresh",
        "refresh the catalog from the versions feed now [env: PYPRIME_VERSIONS_URL]",
      )
      .option(
        "--x86-64-level <level>",
        "x86-64 build level: 1 (baseline, default), 2, 3, 4 or auto [env: PYPRIME_X86_64_LEVEL]",
      )
      .option("--bin-dir <dir>", "where executables are linked [env: PYPRIME_PYTHON_BIN_DIR]")
      .option("--no-bin", "do not link executables")
      .option("--default", "also link python3 and python")
      .option("--force", "replace executables pyprime did not create"),
  );
}

/** The parsed options of `install` and `upgrade`. */
// deno-lint-ignore no-explicit-any
function installOptions(flags: any, cmd: Command): InstallCommandOptions {
  const explicit = cmd.getOptionValueSource("compileBytecode") === "cli";
  const compile = explicit ? flags.compileBytecode !== false : compileByDefault();
  return {
    installDir: flags.installDir,
    sha256: flags.sha256,
    requireHashes: requireHashes(flags.requireHashes),
    reinstall: flags.reinstall,
    bytecode: compile ? bytecodeSettings(flags) : false,
    limits: {
      maxTotalBytes: limitFlag(flags.maxUnpackedSize, "--max-unpacked-size"),
      maxEntries: limitFlag(flags.maxEntries, "--max-entries"),
      maxPathLength: limitFlag(flags.maxPathLength, "--max-path-length"),
    },
    plan: {
      mirror: flags.mirror ?? env("PYPRIME_PYTHON_INSTALL_MIRROR"),
      cacheDir: flags.cacheDir ?? env("PYPRIME_CACHE_DIR"),
      offline: flags.offline,
      catalog: flags.catalog ?? env("PYPRIME_CATALOG"),
      platform: flags.platform,
      prereleases: flags.prerelease,
      refresh: flags.refresh,
      x86_64Level: flags.x8664Level,
    },
    binDir: flags.binDir,
    noBin: flags.bin === false,
    default: flags.default,
    force: flags.force,
  };
}

/** The modules of list, find, uninstall and dir. */
function manage() {
  return import("./src/cli/manage.ts");
}

function buildProgram(run: (code: Promise<number> | number) => void): Command {
  const program = new Command("pyprime")
    .description("Install python-build-standalone CPython with a bytecode-compiled stdlib")
    .option("-q, --quiet", "print errors only")
    .option("-v, --verbose", "print details")
    .option("--json", "print a JSON document on stdout")
    .option("--no-progress", "never draw progress bars (they are drawn only on a terminal)")
    .addOption(
      new Option(
        "--color <when>",
        "colour stderr: auto (a terminal, NO_COLOR, FORCE_COLOR), always, never",
      )
        .choices(["auto", "always", "never"]),
    )
    .version(
      `pyprime ${config.version} (deno ${Deno.version.deno}, ${Deno.build.target})`,
      "-V, --version",
    )
    .showSuggestionAfterError()
    // Commander would guess colour support from FORCE_COLOR, CLICOLOR_FORCE and the
    // TTY's TERM/COLORTERM (through node:tty). Its help has no colour to strip, and every
    // variable read must be in --allow-env, so the guess is switched off; pyprime's own
    // colour rule is in src/cli/output.ts.
    .configureOutput({ getOutHasColors: () => false, getErrHasColors: () => false })
    .exitOverride();

  withInstallFlags(
    program.command("install")
      .description("install Pythons: versions, keys, archive paths or URLs, - for stdin")
      .argument(
        "[requests...]",
        "3.13, 3.13t, >=3.12,<3.14, cpython-3.13.9-linux-x86_64-gnu, ./x.tar.zst, https://…, - " +
          "(default: PYPRIME_PYTHON, .python-version(s), pyproject.toml requires-python)",
      )
      .option("--sha256 <hex>", "expected sha256 of the archive")
      .option("--reinstall", "replace an existing installation of the same key")
      .option("-U, --upgrade", "upgrade installed minor versions instead (see upgrade)"),
  ).action((sources: string[], flags, cmd: Command) => {
    const out = outputFor(cmd.optsWithGlobals());
    const options = installOptions(flags, cmd);
    // Each command loads its own modules: `compile` and `dir` start without the
    // catalog, the download and extraction stages.
    run(
      flags.upgrade
        ? import("./src/cli/upgrade.ts").then(({ runUpgrade }) => runUpgrade(sources, options, out))
        : import("./src/cli/install.ts").then(({ runInstall }) =>
          runInstall(sources, options, out)
        ),
    );
  });

  withInstallFlags(
    program.command("upgrade")
      .description("install the newest patch of installed minor versions (older ones stay)")
      .argument("[requests...]", "installed minor versions to upgrade, e.g. 3.13 (default: all)")
      .option("--prune", "remove the older patches of each upgraded minor version"),
  ).action((requests: string[], flags, cmd: Command) => {
    const out = outputFor(cmd.optsWithGlobals());
    const options = { ...installOptions(flags, cmd), prune: flags.prune };
    run(
      import("./src/cli/upgrade.ts").then(({ runUpgrade }) => runUpgrade(requests, options, out)),
    );
  });

  withBytecodeFlags(
    program.command("compile")
      .description("bytecode-compile existing trees (an installation, a venv's site-packages)")
      .argument("<paths...>", "folders or .py files")
      .option("--python <interpreter>", "interpreter to compile with (default: the tree's own)")
      .option("-f, --force", "rewrite every .pyc, also those that are current"),
  ).action((paths: string[], flags, cmd: Command) => {
    const out = outputFor(cmd.optsWithGlobals());
    const settings = bytecodeSettings(flags);
    run(
      import("./src/cli/compile.ts").then(({ runCompile }) =>
        runCompile(paths, {
          python: flags.python,
          jobs: settings.jobs,
          optimize: settings.optimize,
          invalidationMode: settings.invalidationMode,
          exclude: flags.exclude,
          timeoutSeconds: settings.timeoutSeconds,
          force: flags.force,
        }, out)
      ),
    );
  });

  program.command("pack")
    .description("write a compiled installation as an archive that installs with no compile step")
    .argument("<installation>", "a key, a version request (3.12) or an installation folder")
    .option("-o, --output <file>", "archive or folder to write to, - for stdout (default: .)")
    .addOption(
      new Option("--format <format>", "compression (default: tar.zst, or from -o's name)")
        .choices(["tar.zst", "tar.gz"]),
    )
    .option("--level <n>", "compression level (zstd 1-19, default 3; gzip 1-9, default 6)")
    .option("--install-dir <dir>", "where installations live [env: PYPRIME_PYTHON_INSTALL_DIR]")
    .option("-j, --jobs <n>", "bytecode check workers (default: number of CPUs)")
    .action((target: string, flags, cmd: Command) => {
      const out = outputFor(cmd.optsWithGlobals());
      const jobs = flags.jobs === undefined ? undefined : positiveInt(flags.jobs, "--jobs");
      run(
        import("./src/cli/pack.ts").then(({ runPack }) => runPack(target, { ...flags, jobs }, out)),
      );
    });

  program.command("list")
    .description("list installed and available Pythons, newest first")
    .argument("[request]", "a version, specifier or key, e.g. 3.12 or cpython-3.12.1")
    .option("--install-dir <dir>", "where installations live")
    .option("--only-installed", "only installed Pythons")
    .option("--only-downloads", "only downloads from the catalog")
    .addOption(new Option("--only-available").hideHelp())
    .option("--all-versions", "every patch release, not only the newest of each minor")
    .option("--all-platforms", "downloads for every platform")
    .option("--all-arches", "downloads for every architecture of this OS")
    .option("--show-urls", "the download URL instead of <download available>")
    .option("--catalog <file-or-url>", "use this download catalog [env: PYPRIME_CATALOG]")
    .option("--x86-64-level <level>", "x86-64 build level: 1 (default), 2, 3, 4 or auto")
    .option("--offline", "do not refresh the catalog from the versions feed")
    .option("--refresh", "refresh the catalog from the versions feed now")
    .action((request: string | undefined, flags, cmd: Command) => {
      const catalog = flags.catalog ?? env("PYPRIME_CATALOG");
      const out = outputFor(cmd.optsWithGlobals());
      const onlyDownloads = flags.onlyDownloads || flags.onlyAvailable;
      run(
        import("./src/cli/list.ts").then(({ runList }) =>
          runList(request, { ...flags, onlyDownloads, catalog, x86_64Level: flags.x8664Level }, out)
        ),
      );
    });

  program.command("find")
    .description("print the interpreter path of an installed Python")
    .argument("[request]", "a version, specifier or key (default: as for install)")
    .option("--install-dir <dir>", "where installations live")
    .option("--resolve-links", "print the patch's own path, not the minor-version link's")
    .action((request: string | undefined, flags, cmd: Command) => {
      const out = outputFor(cmd.optsWithGlobals());
      run(manage().then(({ runFind }) => runFind(request, flags, out)));
    });

  program.command("pin")
    .description("write .python-version in the current folder (print the pin without a request)")
    .argument("[request]", "a version, variant or key, e.g. 3.13 or 3.13t")
    .action((request: string | undefined, _flags, cmd: Command) => {
      const out = outputFor(cmd.optsWithGlobals());
      run(import("./src/cli/pin.ts").then(({ runPin }) => runPin(request, out)));
    });

  program.command("uninstall")
    .description("remove installed Pythons")
    .argument("[requests...]", "versions, specifiers or keys")
    .option("--all", "remove every installation")
    .option("--install-dir <dir>", "where installations live")
    .option("--bin-dir <dir>", "where executables are linked")
    .action((keys: string[], flags, cmd: Command) => {
      const out = outputFor(cmd.optsWithGlobals());
      run(manage().then(({ runUninstall }) => runUninstall(keys, flags, out)));
    });

  program.command("dir")
    .description("print the install dir")
    .option("--install-dir <dir>", "where installations live")
    .option("--bin", "print the bin dir instead")
    .option("--bin-dir <dir>", "where executables are linked")
    .action((flags, cmd: Command) => {
      const out = outputFor(cmd.optsWithGlobals());
      run(manage().then(({ runDir }) => runDir(flags, out)));
    });

  program.command("self-check")
    .alias("doctor")
    .description("print the install dir, bin dir, platform and catalog age")
    .option("--install-dir <dir>", "where installations live")
    .option("--bin-dir <dir>", "where executables are linked")
    .option("--catalog <file-or-url>", "use this download catalog [env: PYPRIME_CATALOG]")
    .option("--offline", "do not refresh the catalog from the versions feed")
    .option("--refresh", "refresh the catalog from the versions feed now")
    .action((flags, cmd: Command) => {
      const catalog = flags.catalog ?? env("PYPRIME_CATALOG");
      const out = outputFor(cmd.optsWithGlobals());
      run(
        import("./src/cli/self_check.ts").then(({ runSelfCheck }) =>
          runSelfCheck(config.version, { ...flags, catalog }, out)
        ),
      );
    });

  return program;
}

/**
 * Maps any error to a one-line message, `hint:` and `caused by:` lines, and an exit
 * code; with `--json`, also an `{"error": …}` document on stdout.
 */
function report(err: unknown, verbose: boolean, color?: boolean, json = false): number {
  if (err instanceof BrokenPipeError) return err.exitCode;
  const out = new Output({ color, json });
  const code = describe(err, verbose, out);
  // With --json a failure is a document too, so a script always has one to parse.
  if (json) {
    const known = err instanceof PyprimeError ? err : undefined;
    const message = known?.message ?? refusedPath(err)?.message ??
      (err instanceof Error ? err.message : String(err));
    out.jsonData({ error: { message, hint: known?.hint ?? null, exit_code: code } });
  }
  return code;
}

function describe(err: unknown, verbose: boolean, out: Output): number {
  if (err instanceof PyprimeError) {
    out.error(err.message, err.hint, verbose ? causeChain(err) : []);
    return err.exitCode;
  }
  const refused = refusedPath(err);
  if (refused) {
    out.error(refused.message, refused.hint);
    return 1;
  }
  if (err instanceof Deno.errors.NotCapable) {
    out.error(
      `pyprime was denied something it needs: ${err.message.replace(/, run again with.*$/, "")}`,
      "this is a bug in pyprime's permission set; please report it with the command you ran",
    );
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  out.error(`Unexpected failure: ${message}`, "rerun with --verbose and report this");
  if (verbose && err instanceof Error && err.stack) out.debug(err.stack);
  return 1;
}

/** Parses `args`, runs the command, and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let pending: Promise<number> | number = 0;
  const program = buildProgram((code) => pending = code);
  const verbose = args.includes("-v") || args.includes("--verbose");
  // The error formatter runs outside commander, so it reads --color from the words.
  const at = args.findIndex((a) => a === "--color" || a.startsWith("--color="));
  const when = at < 0 ? undefined : args[at].split("=")[1] ?? args[at + 1];
  const color = when === "always" ? true : when === "never" ? false : undefined;
  try {
    await program.parseAsync(args, { from: "user" });
    return await pending;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message; help and version end with 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    return report(err, verbose, color, args.includes("--json"));
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
