/**
 * The permission set of the `pyprime` task (scripts/permissions.ts) both grants what
 * pyprime needs and denies what it does not: tests/support/data/permission_probe.ts tries one
 * operation under exactly those flags.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { permissionFlags } from "../../scripts/permissions.ts";
import { forbiddenFlags } from "../../scripts/compile.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PROBE = join(ROOT, "tests", "support", "data", "permission_probe.ts");
const FLAGS = await permissionFlags();

interface ProbeResult {
  code: number;
  ok: boolean;
  name?: string;
  message?: string;
  value?: unknown;
  stdout: string;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "pyprime-permissions-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the probe under the pyprime flags with a small, explicit environment. */
async function probe(args: string[], env: Record<string, string> = {}): Promise<ProbeResult> {
  return await withTempDir(async (home) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...FLAGS, PROBE, ...args],
      cwd: ROOT,
      clearEnv: true,
      env: {
        HOME: home,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        // Deno's own cache, so the probe is not transpiled afresh in every temp HOME.
        DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? home, ".cache", "deno"),
        AWS_SECRET_ACCESS_KEY: "do-not-leak-me",
        ...env,
      },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const line = stdout.trim().split("\n").at(-1) ?? "";
    let parsed: Omit<ProbeResult, "code" | "stdout">;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`probe printed no result (exit ${out.code}):\n${stdout}\n${stderr}`);
    }
    return { code: out.code, stdout, ...parsed, value: parsed.value };
  });
}

/** A TCP listener on loopback that counts the connections it gets. */
function countingListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const done = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        conn.close();
      }
    } catch {
      // closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => connections,
    async close() {
      listener.close();
      await done;
    },
  };
}

function assertDenied(result: ProbeResult, name: string, message: RegExp) {
  assert.notEqual(result.code, 0, result.stdout);
  assert.equal(result.ok, false, result.stdout);
  assert.equal(result.name, name, result.stdout);
  assert.match(result.message ?? "", message);
}

Deno.test("pyprime flags grant neither -A nor --allow-all, FFI or remote imports", () => {
  assert.ok(!FLAGS.includes("-A"), FLAGS.join(" "));
  assert.ok(!FLAGS.includes("--allow-all"), FLAGS.join(" "));
  assert.deepEqual(forbiddenFlags(FLAGS), []);
  assert.ok(!FLAGS.some((f) => f.startsWith("--allow-sys")), FLAGS.join(" "));
  // Without it a missing grant would wait for an answer at a prompt instead of failing.
  assert.ok(FLAGS.includes("--no-prompt"), FLAGS.join(" "));
});

Deno.test("pyprime flags deny an env var that is not on the --allow-env list", async () => {
  const result = await probe(["env", "AWS_SECRET_ACCESS_KEY"]);
  assertDenied(result, "NotCapable", /Requires env access to "AWS_SECRET_ACCESS_KEY"/);
  assert.ok(!result.stdout.includes("do-not-leak-me"));
});

Deno.test("pyprime flags let pyprime read HOME", async () => {
  const result = await probe(["env", "HOME"], { HOME: "/home/probe" });
  assert.equal(result.code, 0, result.stdout);
  assert.equal(result.value, "/home/probe");
});

Deno.test("pyprime flags deny loading a native library", async () => {
  const library = Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
  assertDenied(await probe(["ffi", library]), "NotCapable", /Requires ffi access/);
});

Deno.test("pyprime flags deny a remote import without touching the network", async () => {
  const proxy = countingListener();
  const server = countingListener();
  try {
    // Through a proxy that counts: any attempt to fetch example.com would show up there.
    const url = `http://127.0.0.1:${proxy.port}`;
    const remote = await probe(["import", "https://example.com/x.ts"], {
      HTTPS_PROXY: url,
      HTTP_PROXY: url,
    });
    assertDenied(remote, "TypeError", /Requires import access to "example\.com:443"/);
    const loopback = await probe(["import", `http://127.0.0.1:${server.port}/x.ts`]);
    assertDenied(loopback, "TypeError", /Requires import access to "127\.0\.0\.1:\d+"/);
    assert.equal(proxy.connections(), 0);
    assert.equal(server.connections(), 0);
  } finally {
    await proxy.close();
    await server.close();
  }
});

for (const api of ["osRelease", "hostname"]) {
  Deno.test(`pyprime flags deny Deno.${api}() (no --allow-sys)`, async () => {
    assertDenied(
      await probe(["sys", api]),
      "NotCapable",
      new RegExp(`Requires sys access to "${api}"`),
    );
  });
}

Deno.test("pyprime flags let pyprime spawn a process", async () => {
  const result = await probe(["spawn", "hello from sh"]);
  assert.equal(result.code, 0, result.stdout);
  assert.equal(result.value, "hello from sh");
});

Deno.test("pyprime flags let pyprime write, symlink and read in a directory", async () => {
  await withTempDir(async (dir) => {
    const result = await probe(["fs", dir]);
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(result.value, { read: "written", link: "file.txt" });
    assert.equal(await Deno.readLink(join(dir, "link")), "file.txt");
  });
});
