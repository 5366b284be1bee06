/**
 * No Docker engine runs here, so the recipes' builder stages are run as shell
 * scripts against a fixture, with `pyprime` being the CLI under `deno run` with the
 * binary's permission set, so examples/docker cannot rot unnoticed.
 */
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { uvEntry } from "../support/catalog.ts";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { permissionFlags } from "../../scripts/permissions.ts";
import { cliEnv, ROOT, runCli } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { startNginx } from "../support/nginx.ts";

const fx = await fixtures();

/** The RUN instructions of the builder stage, continuation lines joined, mounts dropped. */
export function builderRuns(dockerfile: string): string[] {
  const text = dockerfile.replace(/\\\n/g, " ");
  const stages = text.split(/^FROM /m);
  const builder = stages.find((s) => /\bAS builder\b/.test(s.split("\n")[0]));
  assert(builder, "no builder stage");
  return builder.split("\n")
    .filter((line) => line.startsWith("RUN "))
    .map((line) => line.slice(4).replace(/--mount=\S+\s*/g, "").trim());
}

async function prepare(tmp: string) {
  // A mirror folder in PBS's release layout and a one-entry catalog in uv's format.
  const name = basename(fx.gz);
  await Deno.mkdir(join(tmp, "mirror", "20991231"), { recursive: true });
  await Deno.copyFile(fx.gz, join(tmp, "mirror", "20991231", name));
  const catalog = {
    [`cpython-${fx.version}-linux-x86_64-gnu`]: uvEntry({
      version: fx.version,
      build: "20991231",
      file: name,
      sha256: fx.sha256[fx.gz],
    }),
  };
  await Deno.writeTextFile(join(tmp, "catalog.json"), JSON.stringify(catalog));
  // The "release binary": a stand-in that runs the CLI from source.
  await Deno.mkdir(join(tmp, "dist"));
  await Deno.mkdir(join(tmp, "bin"));
  const stand = join(tmp, "dist", "pyprime-x86_64-unknown-linux-gnu");
  const argv = [Deno.execPath(), "run", ...(await permissionFlags()), join(ROOT, "main.ts")];
  await Deno.writeTextFile(stand, `#!/bin/sh\nexec ${argv.map((a) => `'${a}'`).join(" ")} "$@"\n`);
  await Deno.chmod(stand, 0o755);
}

async function runRecipe(
  file: string,
  tmp: string,
  mirror: string,
  extraEnv: Record<string, string> = {},
): Promise<Deno.CommandOutput> {
  const runs = builderRuns(await Deno.readTextFile(join(ROOT, "examples", "docker", file)));
  const script = runs.join("\n")
    .replaceAll("/opt/python", join(tmp, "opt", "python"))
    .replaceAll("/var/cache/pyprime", join(tmp, "cache"))
    .replaceAll("/usr/local/bin/pyprime", join(tmp, "bin", "pyprime"))
    .replaceAll("/tmp/pyprime/", join(tmp, "dist") + "/")
    .replaceAll("/tmp/packs", join(tmp, "packs"))
    .replace("import json, ssl, sqlite3", `import ${fx.modules.join(", ")}`);
  return await new Deno.Command("sh", {
    args: ["-c", script],
    clearEnv: true,
    env: cliEnv({
      HOME: tmp,
      PATH: `${join(tmp, "bin")}:/usr/bin:/bin`,
      PYTHON_VERSION: fx.tag,
      PYPRIME_CATALOG: join(tmp, "catalog.json"),
      PYPRIME_PYTHON_INSTALL_MIRROR: mirror,
      ...extraEnv,
    }),
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("the Dockerfile's builder stage installs a compiled Python into /opt/python", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pyprime-docker-" });
  await prepare(tmp);
  // Served by nginx over loopback HTTP, as a release host would: the cache mount keeps
  // the archive.
  const server = await startNginx({ root: join(tmp, "mirror") });
  const out = await runRecipe("Dockerfile", tmp, server.url).finally(() => server.stop());
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const opt = join(tmp, "opt", "python");
  const run = await new Deno.Command(join(opt, "bin", "python3"), {
    args: ["-I", "-B", "-c", "import json, sys; print(json.__cached__.startswith(sys.prefix))"],
    clearEnv: true,
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(run.stdout).trim(), "True");
  const cached = await Array.fromAsync(Deno.readDir(join(tmp, "cache")));
  assertEquals(cached.map((e) => e.name), [basename(fx.gz)]);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("the non-root Dockerfile leaves the install world-readable and not group/other-writable", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pyprime-docker-" });
  await prepare(tmp);
  const out = await runRecipe("Dockerfile.nonroot", tmp, pathToFileURL(join(tmp, "mirror")).href);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const bad: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      const mode = (await Deno.lstat(p)).mode! & 0o777;
      if (e.isSymlink) continue;
      const need = e.isDirectory ? 0o005 : 0o004;
      if ((mode & need) !== need || (mode & 0o022) !== 0) bad.push(`${p} ${mode.toString(8)}`);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(join(tmp, "opt", "python"));
  assertEquals(bad, []);
  assert((await Deno.lstat(join(tmp, "opt", "python", "bin", "python3"))).isSymlink);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("the pack Dockerfile's builder stage installs a pack by its SHA256SUMS line, compiling nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pyprime-docker-" });
  await prepare(tmp);
  // CI's part: install once, pack into the folder the image build gets as a context.
  const ci = join(tmp, "ci");
  const packs = join(tmp, "packs");
  await Deno.mkdir(packs);
  for (
    const args of [["install", fx.gz, "--install-dir", ci, "--no-bin"], [
      "pack",
      fx.tag,
      "--install-dir",
      ci,
      "-o",
      packs,
    ]]
  ) {
    const r = await runCli(args, { env: { HOME: tmp } });
    assertEquals(r.code, 0, r.stderr);
  }
  const pack = (await Array.fromAsync(Deno.readDir(packs))).map((e) => e.name)
    .find((n) => n.endsWith("-install_only.tar.zst"))!;
  // No mirror: the recipe must not need the network or the catalog.
  const out = await runRecipe("Dockerfile.pack", tmp, "file:///nonexistent", { PACK: pack });
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertMatch(stderr, /^Bytecode reused [\d,]+, compiled 1 file/m);
  const run = await new Deno.Command(join(tmp, "opt", "python", "bin", "python3"), {
    args: ["-I", "-B", "-c", "import json, sys; print(json.__cached__.startswith(sys.prefix))"],
    clearEnv: true,
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(run.stdout).trim(), "True");
  // A pack whose bytes do not match its line is refused.
  await Deno.writeTextFile(join(packs, "SHA256SUMS"), `${"0".repeat(64)}  ${pack}\n`);
  await Deno.remove(join(tmp, "opt"), { recursive: true });
  const bad = await runRecipe("Dockerfile.pack", tmp, "file:///nonexistent", { PACK: pack });
  assertEquals(bad.code, 1);
  await Deno.remove(tmp, { recursive: true });
});
