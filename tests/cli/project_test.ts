/**
 * `install` and `find` without a request follow the project: PYPRIME_PYTHON, then
 * `.python-version(s)` from the working directory upward, then pyproject.toml's
 * requires-python; `pin` writes `.python-version`. Installs come from an offline
 * file mirror with a catalog naming the fixture, as an air-gapped user has it.
 *
 * @module
 */
import { basename, join } from "node:path";
import { assertEquals, assertMatch } from "../support/assert.ts";
import { runCli } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { parseVersionFile } from "../../src/resolve/project.ts";
import { uvEntry } from "../support/catalog.ts";

const fx = await fixtures();
const [MAJOR, MINOR] = fx.version.split(".").map(Number);
const KEY = `cpython-${fx.version}-linux-x86_64-gnu`;
const BUILD = "20240107";

interface Project {
  home: string;
  root: string;
  work: string;
  args: string[];
}

/** A HOME holding a file mirror + catalog, and a project folder with a nested work dir. */
async function project(): Promise<Project> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-project-" });
  const mirror = join(home, "mirror");
  await Deno.mkdir(join(mirror, BUILD), { recursive: true });
  await Deno.copyFile(fx.zst, join(mirror, BUILD, basename(fx.zst)));
  const entry = (version: string, sha256: string) =>
    uvEntry({ version, build: BUILD, file: basename(fx.zst).replace(fx.version, version), sha256 });
  const older = `${MAJOR}.${MINOR - 1}.3`;
  const catalog = join(home, "catalog.json");
  await Deno.writeTextFile(
    catalog,
    JSON.stringify({
      [KEY]: entry(fx.version, fx.sha256[fx.zst]),
      [`cpython-${older}-linux-x86_64-gnu`]: entry(older, "c".repeat(64)),
    }),
  );
  const root = join(home, "project");
  const work = join(root, "src", "pkg");
  await Deno.mkdir(work, { recursive: true });
  const args = [
    ...["--install-dir", join(home, "pythons"), "--catalog", catalog],
    ...["--mirror", mirror, "--offline", "--no-bin", "--platform", "linux-x86_64-gnu"],
  ];
  return { home, root, work, args };
}

Deno.test("parseVersionFile keeps one request per line and drops comments and blank lines", () => {
  assertEquals(parseVersionFile("# pinned\n3.13\n\n  3.12t  \r\n#3.11\n"), ["3.13", "3.12t"]);
});

Deno.test("install and find without a request use .python-version found upward", async () => {
  const p = await project();
  try {
    await Deno.writeTextFile(join(p.root, ".python-version"), `# the project's\n${fx.tag}\n`);
    const r = await runCli(["install", ...p.args], { cwd: p.work, env: { HOME: p.home } });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, new RegExp(`^Using ${fx.tag} from .*/project/\\.python-version$`, "m"));
    assertMatch(r.stdout, new RegExp(`/${KEY}/bin/python3\\n$`));
    const dir = join(p.home, "pythons");
    const found = await runCli(["find", "--install-dir", dir], {
      cwd: p.work,
      env: { HOME: p.home },
    });
    assertEquals(found.code, 0, found.stderr);
    assertEquals(
      found.stdout,
      `${join(dir, `cpython-${fx.tag}-linux-x86_64-gnu`, "bin", "python3")}\n`,
    );

    // PYPRIME_PYTHON wins over the file.
    const env = { HOME: p.home, PYPRIME_PYTHON: `${MAJOR}.${MINOR + 5}` };
    const other = await runCli(["find", "--install-dir", dir], { cwd: p.work, env });
    assertEquals(other.code, 1, other.stderr);
    assertMatch(other.stderr, new RegExp(`Using ${MAJOR}\\.${MINOR + 5} from PYPRIME_PYTHON`));
  } finally {
    await Deno.remove(p.home, { recursive: true });
  }
});

Deno.test("install without a request or version file takes pyproject.toml's requires-python", async () => {
  const p = await project();
  try {
    await Deno.writeTextFile(
      join(p.root, "pyproject.toml"),
      `[project]\nname = "demo"\nrequires-python = ">=${MAJOR}.${MINOR - 1}"\n`,
    );
    const r = await runCli(["install", ...p.args], { cwd: p.work, env: { HOME: p.home } });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /Using >=\d+\.\d+ from .*\/project\/pyproject\.toml/);
    // The newest matching release, not the older one the catalog also lists.
    assertMatch(r.stdout, new RegExp(`/${KEY}/bin/python3\\n$`));

    await Deno.writeTextFile(join(p.root, "pyproject.toml"), "[project\nname = 1\n");
    const broken = await runCli(["install", ...p.args], { cwd: p.work, env: { HOME: p.home } });
    assertEquals(broken.code, 2, broken.stderr);
    assertMatch(broken.stderr, /^error: Cannot read .*pyproject\.toml: /m);
  } finally {
    await Deno.remove(p.home, { recursive: true });
  }
});

Deno.test("install and find without any request exit 2 with a hint", async () => {
  const p = await project();
  try {
    for (const args of [["install", ...p.args], ["find", "--install-dir", p.home]]) {
      const r = await runCli(args, { cwd: p.work, env: { HOME: p.home } });
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, /^error: No Python requested\nhint: .*pyprime pin/m);
    }
  } finally {
    await Deno.remove(p.home, { recursive: true });
  }
});

Deno.test("pin writes .python-version, prints it back, and refuses files", async () => {
  const p = await project();
  try {
    const r = await runCli(["pin", `${fx.tag}t`], { cwd: p.root, env: { HOME: p.home } });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await Deno.readTextFile(join(p.root, ".python-version")), `${fx.tag}t\n`);
    const shown = await runCli(["pin"], { cwd: p.work, env: { HOME: p.home } });
    assertEquals(shown.code, 0, shown.stderr);
    assertEquals(shown.stdout, `${fx.tag}t\n`);
    const bad = await runCli(["pin", "./x.tar.gz"], { cwd: p.root, env: { HOME: p.home } });
    assertEquals(bad.code, 2, bad.stderr);
    const invalid = await runCli(["pin", "3.x"], { cwd: p.root, env: { HOME: p.home } });
    assertEquals(invalid.code, 2, invalid.stderr);
    assertEquals(await Deno.readTextFile(join(p.root, ".python-version")), `${fx.tag}t\n`);
  } finally {
    await Deno.remove(p.home, { recursive: true });
  }
});

Deno.test("project files may name versions only: an archive path or URL in them is refused", async () => {
  const p = await project();
  try {
    for (const text of [`${fx.gz}\n`, "http://127.0.0.1:1/x.tar.gz\n", "-\n", "3.x\n"]) {
      await Deno.writeTextFile(join(p.root, ".python-version"), text);
      const r = await runCli(["install", ...p.args], { cwd: p.work, env: { HOME: p.home } });
      assertEquals(r.code, 2, `${text}: ${r.stderr}`);
      assertMatch(r.stderr, /^error: .*\.python-version (names an archive|asks for)/m);
    }
    await Deno.remove(join(p.root, ".python-version"));
    await Deno.writeTextFile(
      join(p.root, "pyproject.toml"),
      `[project]\nrequires-python = "${fx.gz}"\n`,
    );
    const toml = await runCli(["install", ...p.args], { cwd: p.work, env: { HOME: p.home } });
    assertEquals(toml.code, 2, toml.stderr);
    // Nothing was installed from the archive the project file named.
    assertEquals((await Array.fromAsync(Deno.readDir(p.home))).map((e) => e.name).sort(), [
      "catalog.json",
      "mirror",
      "project",
    ]);
  } finally {
    await Deno.remove(p.home, { recursive: true });
  }
});

Deno.test("PYPRIME_PYTHON keeps a specifier set whole, and a FIFO named .python-version is skipped", async () => {
  const p = await project();
  try {
    const env = { HOME: p.home, PYPRIME_PYTHON: `>=${MAJOR}.${MINOR},<${MAJOR}.${MINOR + 1}` };
    const r = await runCli(["install", ...p.args, "--json"], { cwd: p.work, env });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout).map((o: { key: string }) => o.key), [KEY]);

    const fifo = await new Deno.Command("mkfifo", { args: [join(p.root, ".python-version")] })
      .output();
    assertEquals(fifo.code, 0);
    await Deno.writeTextFile(
      join(p.root, "pyproject.toml"),
      `[project]\nrequires-python = ">=3"\n`,
    );
    const found = await runCli(["find", "--install-dir", join(p.home, "pythons")], {
      cwd: p.work,
      env: { HOME: p.home },
    });
    assertEquals(found.code, 0, found.stderr);
    assertMatch(found.stderr, /Using >=3 from .*pyproject\.toml/);
  } finally {
    await Deno.remove(p.home, { recursive: true });
  }
});
