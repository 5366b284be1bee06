/**
 * Minor-version links on fake install dirs: the newest working patch wins, a folder
 * without an interpreter gets none, something that is not a symlink at the name is
 * left alone and reported, and a link with no patch left goes.
 *
 * @module
 */
import { join } from "node:path";
import { minorDirName, syncMinorDirs } from "../../src/install/minor_links.ts";
import { assertEquals } from "../support/assert.ts";

async function patch(dir: string, key: string, withPython = true): Promise<void> {
  await Deno.mkdir(join(dir, key, "bin"), { recursive: true });
  if (withPython) await Deno.writeTextFile(join(dir, key, "bin", "python3"), "");
}

Deno.test("minorDirName keeps the variant and platform and drops the patch", () => {
  assertEquals(minorDirName("cpython-3.14.10-linux-x86_64-gnu"), "cpython-3.14-linux-x86_64-gnu");
  assertEquals(
    minorDirName("cpython-3.13.9+freethreaded-linux-aarch64-musl"),
    "cpython-3.13+freethreaded-linux-aarch64-musl",
  );
  assertEquals(minorDirName("not-a-key"), undefined);
});

Deno.test("syncMinorDirs links the newest patch with an interpreter, skips empty ones, reports blocked names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pyprime-minor-" });
  try {
    await patch(dir, "cpython-3.14.9-linux-x86_64-gnu");
    await patch(dir, "cpython-3.14.10-linux-x86_64-gnu");
    await patch(dir, "cpython-3.14.11-linux-x86_64-gnu", false); // emptied by hand
    await patch(dir, "cpython-3.13.5-linux-x86_64-gnu");
    await Deno.mkdir(join(dir, "cpython-3.13-linux-x86_64-gnu")); // a user's own folder
    const report = await syncMinorDirs(dir);
    assertEquals(report.linked, {
      "cpython-3.14-linux-x86_64-gnu": "cpython-3.14.10-linux-x86_64-gnu",
    });
    assertEquals(report.blocked, ["cpython-3.13-linux-x86_64-gnu"]);
    assertEquals(
      await Deno.readLink(join(dir, "cpython-3.14-linux-x86_64-gnu")),
      "cpython-3.14.10-linux-x86_64-gnu",
    );
    assertEquals((await Deno.lstat(join(dir, "cpython-3.13-linux-x86_64-gnu"))).isDirectory, true);

    await Deno.remove(join(dir, "cpython-3.14.10-linux-x86_64-gnu"), { recursive: true });
    assertEquals((await syncMinorDirs(dir)).linked, {
      "cpython-3.14-linux-x86_64-gnu": "cpython-3.14.9-linux-x86_64-gnu",
    });
    await Deno.remove(join(dir, "cpython-3.14.9-linux-x86_64-gnu"), { recursive: true });
    assertEquals((await syncMinorDirs(dir)).removed, ["cpython-3.14-linux-x86_64-gnu"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
