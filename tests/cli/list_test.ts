/**
 * `pyprime list` as scripts use it: newest patch per minor unless --all-versions,
 * --show-urls, --all-arches, and the uv-shaped `--json` rows, guarded by a snapshot
 * (`UPDATE_SNAPSHOTS=1` rewrites it after a deliberate change).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "../support/assert.ts";
import { uvEntry } from "../support/catalog.ts";
import { ROOT, runCli } from "../support/cli.ts";

const SNAPSHOT = join(ROOT, "tests", "cli", "snapshots", "list.json");

const PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download/";

function entry(version: string, build: string, arch = "x86_64") {
  const file = `cpython-${version}+${build}-${arch}-unknown-linux-gnu-install_only_stripped.tar.gz`;
  return uvEntry({ version, build, file, sha256: "0".repeat(64), arch });
}

async function withCatalog(fn: (args: string[], home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-list-" });
  try {
    const catalog = join(home, "catalog.json");
    await Deno.writeTextFile(
      catalog,
      JSON.stringify({
        "cpython-3.14.10-linux-x86_64-gnu": entry("3.14.10", "20261120"),
        "cpython-3.14.9-linux-x86_64-gnu": entry("3.14.9", "20261014"),
        "cpython-3.13.18-linux-x86_64-gnu": entry("3.13.18", "20261120"),
        "cpython-3.14.10-linux-aarch64-gnu": entry("3.14.10", "20261120", "aarch64"),
      }),
    );
    await fn(["--catalog", catalog, "--install-dir", join(home, "pythons")], home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("list shows the newest patch per minor, newest first, unless --all-versions", async () => {
  await withCatalog(async (args, home) => {
    const r = await runCli(["list", "--only-downloads", ...args], { env: { HOME: home } });
    assertEquals(r.code, 0, r.stderr);
    const keys = r.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
    assertEquals(keys.filter((k) => k.includes("x86_64")), [
      "cpython-3.14.10-linux-x86_64-gnu",
      "cpython-3.13.18-linux-x86_64-gnu",
    ]);
    const all = await runCli(["list", "--only-downloads", "--all-versions", ...args], {
      env: { HOME: home },
    });
    assert(
      /^cpython-3\.14\.9-linux-x86_64-gnu +<download available>$/m.test(all.stdout),
      all.stdout,
    );

    const urls = await runCli(["list", "--only-downloads", "--show-urls", ...args], {
      env: { HOME: home },
    });
    assert(
      urls.stdout.includes(`${PREFIX}20261120/cpython-3.14.10%2B20261120-x86_64`),
      urls.stdout,
    );
    assert(!urls.stdout.includes("<download available>"), urls.stdout);

    const arches = await runCli(["list", "--only-downloads", "--all-arches", ...args], {
      env: { HOME: home },
    });
    assert(arches.stdout.includes("cpython-3.14.10-linux-aarch64-gnu"), arches.stdout);
  });
});

Deno.test("list --json rows have uv's fields plus build and status (snapshot)", async () => {
  await withCatalog(async (args, home) => {
    const r = await runCli(["--json", "list", "--only-downloads", "--all-arches", ...args], {
      env: { HOME: home },
    });
    assertEquals(r.code, 0, r.stderr);
    const text = JSON.stringify(JSON.parse(r.stdout), null, 2) + "\n";
    if (Deno.env.get("UPDATE_SNAPSHOTS") === "1") await Deno.writeTextFile(SNAPSHOT, text);
    assertEquals(text, await Deno.readTextFile(SNAPSHOT));
  });
});
