/**
 * The folder layout of `src/` is a contract: one folder per pipeline stage, imports
 * pointing only down the pipeline, and no file that outgrows one concern.
 *
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { ROOT } from "./support/cli.ts";

const SRC = join(ROOT, "src");

/** The stages each folder may import from (besides itself and the shared root files). */
const ALLOWED: Record<string, string[]> = {
  cli: ["resolve", "fetch", "unpack", "install", "bytecode", "pack"],
  resolve: ["fetch"],
  fetch: [],
  unpack: [],
  install: ["resolve", "fetch", "unpack"],
  bytecode: [],
  // `pyprime pack` reads an installation (install's sysconfig format) and checks its bytecode.
  pack: ["install", "bytecode"],
  "": [],
};

async function sources(): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string) {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) out.push(path);
    }
  }
  await walk(SRC);
  return out.sort();
}

function folderOf(path: string): string {
  const rel = relative(SRC, path);
  return rel.includes("/") ? rel.split("/")[0] : "";
}

function relativeImports(text: string): string[] {
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]);
  return specs.filter((s) => s.endsWith(".ts"));
}

Deno.test("src imports point only down the pipeline and never into a command", async () => {
  const wrong: string[] = [];
  for (const file of await sources()) {
    const from = folderOf(file);
    for (const spec of relativeImports(await Deno.readTextFile(file))) {
      const target = resolve(dirname(file), spec);
      assert(target.startsWith(SRC + "/"), `${file} imports ${spec} outside src/`);
      const to = folderOf(target);
      if (to === from || to === "") continue;
      if (!ALLOWED[from]?.includes(to)) wrong.push(`${relative(ROOT, file)} -> ${spec}`);
    }
  }
  assertEquals(wrong, []);
});

Deno.test("src has one folder per stage and no source file over 400 lines", async () => {
  const folders = new Set((await sources()).map(folderOf));
  assertEquals([...folders].sort(), Object.keys(ALLOWED).sort());
  const long: string[] = [];
  for (const file of await sources()) {
    const lines = (await Deno.readTextFile(file)).split("\n").length - 1;
    if (lines > 400) long.push(`${relative(ROOT, file)}: ${lines}`);
  }
  assertEquals(long, []);
});
