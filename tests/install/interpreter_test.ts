import { assertEquals } from "../support/assert.ts";
import assertStrict from "node:assert/strict";
import { ArchiveError } from "../../src/errors.ts";
import { parseProbe, probeInterpreter } from "../../src/install/interpreter.ts";
import { join } from "node:path";
import { fixtures } from "../support/fixtures.ts";

const good = {
  implementation: "cpython",
  version: "3.12.1",
  minor: "3.12",
  variant: "",
  os: "linux",
  arch: "x86_64",
  libc: "gnu",
  stdlib: "/s/lib/python3.12",
  prefix: "/s",
  exec_prefix: "/s",
  platstdlib: "/s/lib/python3.12",
  purelib: "/s/lib/python3.12/site-packages",
};

Deno.test("parseProbe builds the key from a well-formed answer", () => {
  assertEquals(parseProbe(JSON.stringify(good), "a.tar").key, "cpython-3.12.1-linux-x86_64-gnu");
});

Deno.test("parseProbe takes a magic number and cache tag only when they are strings", () => {
  const said = parseProbe(
    JSON.stringify({ ...good, magic: "cb0d0d0a", cache_tag: "cpython-312" }),
    "a",
  );
  assertEquals([said.magic, said.cache_tag], ["cb0d0d0a", "cpython-312"]);
  const odd = parseProbe(JSON.stringify({ ...good, magic: 3, cache_tag: ["x"] }), "a");
  assertEquals([odd.magic, odd.cache_tag], [undefined, undefined]);
});

Deno.test("parseProbe refuses answers that are not JSON, incomplete, or make a path", () => {
  const cases = [
    "Segmentation fault",
    JSON.stringify({ ...good, stdlib: 3 }),
    JSON.stringify({ ...good, implementation: "../../evil" }),
    JSON.stringify({ ...good, os: "linux/../x" }),
  ];
  for (const text of cases) {
    assertStrict.throws(() => parseProbe(text, "a.tar"), ArchiveError, text);
  }
});

Deno.test("probeInterpreter answers what json.dumps would when the path has quotes, backslashes and non-BMP characters", async () => {
  // The probe encodes its JSON by hand (importing json costs as much as the rest).
  const fx = await fixtures();
  const parent = await Deno.makeTempDir();
  const dir = join(parent, 'py "q" back\\slash ü 𝄞');
  try {
    await Deno.mkdir(dir);
    const tar = await new Deno.Command("tar", { args: ["-xzf", fx.gz, "-C", dir] }).output();
    assertEquals(tar.success, true);
    const python = join(dir, "python", "bin", "python3");
    const info = await probeInterpreter(python, "fixture");
    const reference = await new Deno.Command(python, {
      args: [
        "-I",
        "-B",
        "-c",
        "import importlib.util, json, sys, sysconfig; print(json.dumps([sysconfig.get_paths()" +
        "['stdlib'], sys.prefix, importlib.util.MAGIC_NUMBER.hex(), sys.implementation.cache_tag]))",
      ],
      clearEnv: true,
      stdout: "piped",
    }).output();
    const [stdlib, prefix, magic, tag] = JSON.parse(new TextDecoder().decode(reference.stdout));
    assertEquals([info.stdlib, info.prefix], [stdlib, prefix]);
    // What the shipped bytecode of a pack is checked against.
    assertEquals([info.magic, info.cache_tag], [magic, tag]);
    assertEquals(info.prefix, join(dir, "python"));
    assertEquals(info.key.startsWith(`cpython-${fx.version}-linux-`), true, info.key);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
