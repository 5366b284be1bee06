/**
 * `deno task test`: the README's test command. It does its own set-up, so that it
 * passes on a fresh machine with only Node, npm and python3:
 *
 * 1. the Debian tools the tests run (installer shells, TLS tools, nginx as a mirror,
 *    tinyproxy as a forward proxy, patchelf)
 *    are installed with apt when missing and running as root; otherwise it stops with
 *    one line naming the packages;
 * 2. Deno's module cache is warmed, so Deno's own `Download …` lines never reach the
 *    stderr of a CLI run under test;
 * 3. `deno test --allow-all --parallel tests/` runs, with any extra arguments.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The commands the tests run, and the Debian package of each. */
export const TOOLS: Readonly<Record<string, string>> = {
  shellcheck: "shellcheck",
  busybox: "busybox",
  dash: "dash",
  curl: "curl",
  wget: "wget",
  openssl: "openssl",
  shasum: "perl",
  script: "bsdutils",
  unshare: "util-linux",
  tar: "tar",
  patchelf: "patchelf",
  nginx: "nginx",
  tinyproxy: "tinyproxy",
};

/** Whether `tool` is an executable file in a folder of `PATH`. */
export function onPath(tool: string, path = Deno.env.get("PATH") ?? ""): boolean {
  return path.split(delimiter).filter(Boolean).some((dir) => {
    try {
      const info = Deno.statSync(join(dir, tool));
      return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

/** The Debian packages of the tools that are not on PATH, each once, sorted. */
export function missingPackages(tools: Record<string, string> = TOOLS): string[] {
  const missing = Object.entries(tools).filter(([tool]) => !onPath(tool)).map(([, pkg]) => pkg);
  return [...new Set(missing)].sort();
}

async function run(cmd: string, args: string[], quiet: boolean): Promise<number> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: quiet ? "piped" : "inherit",
    stderr: quiet ? "piped" : "inherit",
  });
  const out = await child.output();
  if (!out.success && quiet) {
    await Deno.stderr.write(out.stdout);
    await Deno.stderr.write(out.stderr);
  }
  return out.code;
}

async function installTools(): Promise<void> {
  const packages = missingPackages();
  if (packages.length === 0) return;
  if (Deno.uid() !== 0 || !onPath("apt-get")) {
    console.error(
      `error: the tests need these Debian packages: ${packages.join(" ")} ` +
        `(install them with: sudo apt-get install ${packages.join(" ")})`,
    );
    Deno.exit(1);
  }
  console.error(`Installing Debian packages the tests need: ${packages.join(" ")}`);
  if (
    await run("apt-get", ["update", "-qq"], true) !== 0 ||
    await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], true) !==
      0
  ) {
    console.error(`error: apt-get could not install ${packages.join(" ")}`);
    Deno.exit(1);
  }
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await tsFiles(rel));
    else if (e.name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

async function warmCache(): Promise<void> {
  const files = [
    "main.ts",
    ...await tsFiles("src"),
    ...await tsFiles("scripts"),
    ...await tsFiles("tests"),
  ];
  if (await run(Deno.execPath(), ["cache", "--quiet", ...files], true) !== 0) {
    console.error("error: deno could not fetch the project's npm packages (see above)");
    Deno.exit(1);
  }
}

if (import.meta.main) {
  await installTools();
  await warmCache();
  const code = await run(Deno.execPath(), [
    "test",
    "--allow-all",
    "--parallel",
    ...Deno.args,
    "tests/",
  ], false);
  Deno.exit(code);
}
