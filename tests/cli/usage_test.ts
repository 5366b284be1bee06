/**
 * Exit codes as the README promises them: 2 for every usage error, 1 for runtime
 * failures; and failed commands leave no install dir behind.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../support/assert.ts";
import { ROOT, runCli, shellCommand } from "../support/cli.ts";
import { fixtures } from "../support/fixtures.ts";
import { names } from "../support/helpers.ts";
import { isInstallKey } from "../../src/install/layout.ts";
import { minorDirName } from "../../src/install/minor_links.ts";

async function withHome(fn: (home: string, dir: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "pyprime-usage-" });
  try {
    await fn(home, join(home, "pythons"));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

const USAGE_ERRORS: [string[], RegExp][] = [
  [["install", "3.x"], /^error: Invalid Python request "3\.x"$/m],
  [["install", "cpython-"], /^error: Invalid Python request "cpython-"$/m],
  [["install", "latest"], /^error: Invalid Python request "latest"$/m],
  [["install", ""], /^error: Invalid Python request ""$/m],
  [["install", "3.12", "--platform", "linux"], /^error: Invalid platform "linux": /m],
  [["install", "3.12", "--platform", "plan9-x86_64"], /^error: Invalid platform "plan9-x86_64"/m],
  [["install", "3.12", "--mirror", "srv/pbs"], /^error: Invalid mirror "srv\/pbs": /m],
  [["install", "3.12", "--mirror", "ftp://host/pbs"], /^error: Invalid mirror "ftp:/m],
  [["install", "3.12", "--optimize", "3"], /^error: --optimize takes 0, 1 and 2, not 3$/m],
  [["install", "3.12", "--jobs", "0"], /^error: --jobs takes a whole number above 0, not 0$/m],
  [["uninstall"], /^error: Nothing to uninstall$/m],
  [["list", "--only-installed", "--only-available"], /exclude each other/],
  [["-q", "-v", "dir"], /^error: -q\/--quiet and -v\/--verbose exclude each other$/m],
  [["dir", "--quiet", "--verbose"], /exclude each other/],
  [["find", "3.x"], /^error: Invalid Python request "3\.x"$/m],
  [["instal", "3.12"], /unknown command 'instal'/],
  [["install", "3.12", "--no-such-flag"], /unknown option '--no-such-flag'/],
];

Deno.test("usage errors exit 2 with one error line and create no install dir", async () => {
  await withHome(async (home, dir) => {
    for (const [args, message] of USAGE_ERRORS) {
      const r = await runCli([...args, "--install-dir", dir], { env: { HOME: home } });
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, message, args.join(" "));
      assertEquals(r.stdout, "", args.join(" "));
      assertEquals(await names(home), [], `${args.join(" ")} left files in HOME`);
    }
  });
});

Deno.test("an empty --install-dir or --bin-dir is a usage error, and a relative HOME gives an absolute default", async () => {
  await withHome(async (home) => {
    for (const args of [["install", "3.12"], ["list"], ["find"], ["dir"], ["uninstall", "--all"]]) {
      const r = await runCli([...args, "--install-dir", ""], { env: { HOME: home }, cwd: home });
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /^error: --install-dir is empty$/m, args.join(" "));
      assertEquals(await names(home), [], `${args.join(" ")} left files in HOME`);
    }
    for (const args of [["install", "3.12"], ["uninstall", "--all"], ["dir", "--bin"]]) {
      const r = await runCli([...args, "--bin-dir", ""], { env: { HOME: home }, cwd: home });
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /^error: --bin-dir is empty$/m, args.join(" "));
      assertEquals(await names(home), [], `${args.join(" ")} left files in HOME`);
    }
    const r = await runCli(["dir"], { env: { HOME: "rel" }, cwd: home });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      r.stdout.trim(),
      join(await Deno.realPath(home), "rel/.local/share/pyprime/python"),
    );
  });
});

Deno.test("runtime failures exit 1 and a failed install or uninstall creates no install dir", async () => {
  await withHome(async (home, dir) => {
    const cases: [string[], RegExp][] = [
      [["install", join(home, "missing.tar.gz")], /Cannot read archive .*missing\.tar\.gz/],
      [["install", "3.99", "--offline"], /No CPython matches "3\.99"/],
      [["find", "3.12"], /No installed Python matches "3\.12"/],
      [["uninstall", "3.12"], /No installed Python matches "3\.12"/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli([...args, "--install-dir", dir], { env: { HOME: home } });
      assertEquals(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, message);
    }
    const all = await runCli(["uninstall", "--all", "--install-dir", dir], { env: { HOME: home } });
    assertEquals(all.code, 0, all.stderr);
    assertEquals(await names(home), []);
  });
});

Deno.test("a bad request among several fails the command before any install starts", async () => {
  const fx = await fixtures();
  await withHome(async (home, dir) => {
    const r = await runCli(["install", fx.gz, "3.x", "--install-dir", dir], {
      env: { HOME: home },
    });
    assertEquals(r.code, 2, r.stderr);
    assertEquals(await names(home), []);
  });
});

Deno.test("find skips an installation whose interpreter is gone and says so", async () => {
  const fx = await fixtures();
  await withHome(async (home, dir) => {
    const r = await runCli(["install", fx.gz, "--install-dir", dir, "--no-bin"], {
      env: { HOME: home },
    });
    assertEquals(r.code, 0, r.stderr);
    const key = (await names(dir)).find(isInstallKey)!;
    const ok = await runCli(["find", fx.tag, "--install-dir", dir], { env: { HOME: home } });
    assertEquals(ok.code, 0, ok.stderr);
    // Through the minor-version link: the path that survives upgrades.
    assertEquals(ok.stdout, `${join(dir, minorDirName(key)!, "bin", "python3")}\n`);

    await Deno.remove(join(dir, key, "bin", "python3"));
    const broken = await runCli(["find", fx.tag, "--install-dir", dir], { env: { HOME: home } });
    assertEquals(broken.code, 1, broken.stderr);
    assertEquals(broken.stdout, "");
    assertMatch(broken.stderr, /has no executable bin\/python3/);
    assert(broken.stderr.includes("--reinstall"), broken.stderr);
  });
});

Deno.test("compile exits 1 and lists each failed file even with --quiet; a missing path is named", async () => {
  await withHome(async (home) => {
    const tree = join(home, "tree");
    await Deno.mkdir(tree);
    await Deno.writeTextFile(join(tree, "good.py"), "x = 1\n");
    await Deno.writeTextFile(join(tree, "bad.py"), "def f(:\n");
    const python = (await fixtures()).pythonSource;
    const r = await runCli(["-q", "compile", tree, "--python", python], { env: { HOME: home } });
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stderr, /^error: Cannot compile .*bad\.py: SyntaxError/m);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);

    await Deno.remove(join(tree, "bad.py"));
    // Its .pyc from the first run would be reused: compile from scratch for the count.
    await Deno.remove(join(tree, "__pycache__"), { recursive: true });
    const one = await runCli(["compile", join(tree, "good.py"), "--python", python], {
      env: { HOME: home },
    });
    assertEquals(one.code, 0, one.stderr);
    assertMatch(one.stderr, /^Bytecode compiled 1 file in \d+\.\d\ds$/m);

    for (const extra of [[], ["--python", python]]) {
      const missing = await runCli(["compile", join(home, "nope"), ...extra], {
        env: { HOME: home },
      });
      assertEquals(missing.code, 1, missing.stderr);
      assertMatch(missing.stderr, /^error: Cannot compile .*nope: no such file or folder$/m);
    }
  });
});

Deno.test("install of a text file or random bytes says it is not a gzip, zstd or tar archive", async () => {
  await withHome(async (home, dir) => {
    const text = join(home, "page.tar.gz");
    await Deno.writeTextFile(text, "404 Not Found: no such release\n".repeat(40));
    const random = join(home, "noise.tar.zst");
    await Deno.writeFile(random, crypto.getRandomValues(new Uint8Array(4096)));
    for (const path of [text, random]) {
      const r = await runCli(["install", path, "--install-dir", dir], { env: { HOME: home } });
      assertEquals(r.code, 1, r.stderr);
      assertMatch(
        r.stderr,
        new RegExp(
          `^error: Cannot read archive .*${
            path.split("/").at(-1)!.replaceAll(".", "\\.")
          }: it is not a gzip, zstd or tar archive$`,
          "m",
        ),
      );
      assertEquals((await names(dir)).filter((n) => !n.startsWith(".")), []);
    }
  });
});

Deno.test("self-check reports an unusable install dir and exits 1 instead of crashing", async () => {
  await withHome(async (home) => {
    const file = join(home, "not-a-dir");
    await Deno.writeTextFile(file, "x");
    const r = await runCli(["self-check", "--install-dir", file], { env: { HOME: home } });
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stdout, /^install dir: .*not-a-dir \(unusable\)$/m);
    assertMatch(r.stdout, /^platform: /m);
    assertMatch(r.stderr, /^error: Cannot read the install dir .*not-a-dir: /m);
    const json = await runCli(["--json", "self-check", "--install-dir", file], {
      env: { HOME: home },
    });
    assertEquals(json.code, 1);
    assertEquals(JSON.parse(json.stdout).problems.length, 1);
  });
});

Deno.test("an install dir under /dev gets Deno's refusal explained, not a flag to pass", async () => {
  await withHome(async (home) => {
    for (
      const args of [["install", "3.12"], ["list", "--only-installed"], ["uninstall", "--all"]]
    ) {
      const r = await runCli([...args, "--install-dir", "/dev/shm/pyprime-test"], {
        env: { HOME: home },
      });
      assertEquals(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /^error: Deno does not let pyprime use \/dev\/shm\/pyprime-test/m);
      assert(!r.stderr.includes("--allow-all"), r.stderr);
    }
  });
});

Deno.test("task catalog with a missing file prints one error line", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "scripts", "update_catalog.ts"), "/nonexistent/metadata.json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 1);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  assertMatch(stderr, /^update_catalog: error: .*\/nonexistent\/metadata\.json/);
  assertEquals(stderr.split("\n").length, 1, stderr);
});

Deno.test("install of several requests keeps the ones that worked and names the one that failed", async () => {
  const fx = await fixtures();
  await withHome(async (home, dir) => {
    const bad = join(home, "broken.tar.gz");
    await Deno.writeTextFile(bad, "not an archive at all\n".repeat(50));
    const args = ["install", fx.gz, bad, "--install-dir", dir, "--no-bin"];
    const text = await runCli(args, { env: { HOME: home } });
    assertEquals(text.code, 1, text.stderr);
    assertMatch(text.stderr, /^error: Cannot install .*broken\.tar\.gz: Cannot read archive /m);
    assertMatch(
      text.stderr,
      /^Installed 1 request of 2 \(.*\.tar\.gz\); failed: .*broken\.tar\.gz$/m,
    );
    assertMatch(text.stdout, /\/bin\/python3\n$/);
    assertEquals((await names(dir)).filter(isInstallKey).length, 1);

    const json = await runCli(["--json", ...args, "--reinstall"], { env: { HOME: home } });
    assertEquals(json.code, 1, json.stderr);
    const outcomes = JSON.parse(json.stdout);
    assertEquals(outcomes.map((o: { status: string }) => o.status), ["reinstalled", "failed"]);
    assertEquals(outcomes[1].source, bad);
    assertMatch(outcomes[1].error, /not a gzip, zstd or tar archive/);
    assertEquals(await names(join(dir, ".staging")), []);
  });
});

Deno.test("a malformed URL with credentials is a usage error that never shows them", async () => {
  await withHome(async (home, dir) => {
    for (
      const url of ["http://user:s3cret@[::1:9/x.tar.gz", "http://user:s3cret@exa mple/x.tar.gz"]
    ) {
      const r = await runCli(["--json", "install", url, "--install-dir", dir], {
        env: { HOME: home },
      });
      assertEquals(r.code, 2, r.stderr);
      assert(!r.stderr.includes("s3cret") && !r.stdout.includes("s3cret"), r.stderr + r.stdout);
      assertMatch(r.stderr, /^error: Invalid URL /m);
      // --json: the failure is a document too.
      assertEquals(JSON.parse(r.stdout).error.exit_code, 2);
    }
  });
});

Deno.test("stdout on a full disk is one clear error, not an unexpected failure", async () => {
  const out = await new Deno.Command("sh", {
    args: ["-c", `${await shellCommand(["dir"])} > /dev/full`],
    stderr: "piped",
  }).output();
  assertEquals(out.code, 1);
  assertMatch(new TextDecoder().decode(out.stderr), /^error: Cannot write to standard output: /m);
});

Deno.test("compile again leaves current .pyc alone, rewrites a changed source's, and --force rewrites all", async () => {
  await withHome(async (home) => {
    const tree = join(home, "tree");
    await Deno.mkdir(tree);
    for (const name of ["a", "b", "c"]) {
      await Deno.writeTextFile(join(tree, `${name}.py`), `X = ${JSON.stringify(name)}\n`);
    }
    const python = (await fixtures()).pythonSource;
    const args = ["compile", tree, "--python", python];
    assertEquals((await runCli(args, { env: { HOME: home } })).code, 0);
    const pycs = async () => {
      const out: Record<string, number> = {};
      for await (const e of Deno.readDir(join(tree, "__pycache__"))) {
        out[e.name.split(".")[0]] = (await Deno.stat(join(tree, "__pycache__", e.name))).mtime!
          .getTime();
      }
      return out;
    };
    const first = await pycs();
    await new Promise((r) => setTimeout(r, 50));
    const again = await runCli(args, { env: { HOME: home } });
    assertEquals(again.code, 0, again.stderr);
    assertMatch(again.stderr, /^Bytecode reused 3, compiled 0 files in /m);
    assertEquals(await pycs(), first);

    await Deno.writeTextFile(join(tree, "b.py"), "X = 'changed, and longer'\n");
    const changed = await runCli(args, { env: { HOME: home } });
    assertMatch(changed.stderr, /^Bytecode reused 2, compiled 1 file in /m);
    const after = await pycs();
    assertEquals([after.a, after.c], [first.a, first.c]);
    assert(after.b !== first.b, "b's .pyc was not rewritten");

    const forced = await runCli([...args, "--force"], { env: { HOME: home } });
    assertMatch(forced.stderr, /^Bytecode compiled 3 files in /m);
    const all = await pycs();
    assert(all.a !== after.a && all.c !== after.c, "--force left a .pyc as it was");
  });
});
