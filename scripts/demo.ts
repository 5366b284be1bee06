// deno-lint-ignore-file no-console
/**
 * The offline demo: builds a PBS-shaped archive from this machine's CPython, then
 * installs it with pyprime exactly as the binary would run (same permission set),
 * and shows the installed interpreter starting with a compiled standard library.
 *
 *     deno task demo [--install-dir DIR]
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildFixtures } from "./build_fixtures.ts";
import { permissionFlags } from "./permissions.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = Deno.args;
const at = args.indexOf("--install-dir");
const installDir = at >= 0 ? args[at + 1] : join(root, ".cache", "demo", "python");

console.error("• Building a python-build-standalone-shaped archive from this machine's CPython");
const fx = await buildFixtures({ outDir: join(root, ".cache", "fixtures") });
console.error(`  ${fx.zst}`);

console.error(`• pyprime install ${fx.zst} --install-dir ${installDir} --reinstall`);
console.error(
  `  (executables are linked in ${join(installDir, "..", "bin")}, not in ~/.local/bin)`,
);
const install = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...(await permissionFlags()),
    join(root, "main.ts"),
    "install",
    fx.zst,
    "--install-dir",
    installDir,
    "--bin-dir",
    join(installDir, "..", "bin"),
    "--reinstall",
  ],
  stdout: "piped",
  stderr: "inherit",
}).output();
if (!install.success) Deno.exit(install.code);
const python = new TextDecoder().decode(install.stdout).trim();
console.error(`• Installed interpreter: ${python}`);

const imports =
  "import asyncio, json, email.parser, http.client, decimal, typing, logging, argparse";
const started = performance.now();
const run = await new Deno.Command(python, {
  args: ["-I", "-B", "-c", `${imports}; import sys; print(sys.version)`],
  clearEnv: true,
  env: { LC_ALL: "C.UTF-8" },
}).output();
const ms = (performance.now() - started).toFixed(0);
console.log(new TextDecoder().decode(run.stdout).trim());
console.error(`• ${imports.replace("import ", "imported ")} in ${ms} ms from compiled bytecode`);
Deno.exit(run.code);
