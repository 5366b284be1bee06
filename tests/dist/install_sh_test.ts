/**
 * scripts/install.sh run the way users run it (`curl … | sh -s -- args`), under dash and
 * busybox sh, against a loopback HTTP server holding a fake release: a shell script
 * standing in for the pyprime binary, plus SHA256SUMS. HOME and TMPDIR always point into
 * a temp dir, so every run also shows what it left behind.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hostTarget } from "../../scripts/compile.ts";
import { makeCa, type TestCa } from "../support/tls.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT_PATH = join(ROOT, "scripts", "install.sh");
const SCRIPT = await Deno.readFile(SCRIPT_PATH);
const SYSTEM_PATH = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
const TARGET = hostTarget() ?? "x86_64-unknown-linux-gnu";
const BINARY = `pyprime-${TARGET}`;

const SHELLS: { name: string; argv: string[] }[] = [
  { name: "dash", argv: ["dash"] },
  { name: "busybox sh", argv: ["busybox", "sh"] },
];

/** The absolute path of `tool` on the system PATH, or undefined. */
function which(tool: string): string | undefined {
  for (const dir of SYSTEM_PATH.split(":")) {
    const path = join(dir, tool);
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

function requireTool(tool: string, pkg = tool): string {
  const path = which(tool);
  if (!path) {
    throw new Error(`${tool} is not installed; these tests need it: apt-get install ${pkg}`);
  }
  return path;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

interface Request {
  path: string;
  agent: string;
}

interface Sandbox {
  root: string;
  home: string;
  tmp: string;
  release: string;
  log: string;
  url: string;
  /** The stand-in pyprime served as the release binary. */
  binary: string;
  requests: Request[];
}

interface Release {
  /** Binaries to put in the release, by file name (default: the host's stand-in). */
  files?: string[];
  /** SHA256SUMS text; default: correct lines for every served binary. */
  sums?: string;
  /** Leave the binary out of the release (a 404), but keep its SHA256SUMS line. */
  omitBinary?: boolean;
  /** Serve over HTTPS with this CA's server certificate. */
  tls?: TestCa;
}

function standIn(log: string): string {
  return `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\necho "pyprime 0.0.0 (stand-in)"\n`;
}

async function withSandbox(release: Release, fn: (box: Sandbox) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "pyprime-install-sh-test-" });
  const home = join(root, "home");
  const tmp = join(root, "tmp");
  const dir = join(root, "release");
  for (const d of [home, tmp, dir]) await Deno.mkdir(d);
  const log = join(root, "pyprime-args.log");
  const binary = standIn(log);
  const files = release.files ?? [BINARY];
  const sums = release.sums ?? files.map((f) => `${sha256(binary)}  ${f}\n`).join("");
  await Deno.writeTextFile(join(dir, "SHA256SUMS"), sums);
  if (!release.omitBinary) {
    for (const f of files) await Deno.writeTextFile(join(dir, f), binary);
  }
  const requests: Request[] = [];
  const tls = release.tls && {
    cert: await Deno.readTextFile(release.tls.cert),
    key: await Deno.readTextFile(release.tls.key),
  };
  const listen = { hostname: "127.0.0.1", port: 0, onListen() {}, ...tls };
  const server = Deno.serve(listen, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push({ path, agent: req.headers.get("user-agent") ?? "" });
    const name = decodeURIComponent(path.slice(1));
    if (name.includes("/") || name.startsWith(".")) return new Response("no", { status: 404 });
    try {
      return new Response(await Deno.readFile(join(dir, name)));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const url = `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}/`;
  try {
    await fn({ root, home, tmp, release: dir, log, url, binary, requests });
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env?: Record<string, string>;
  path?: string;
  script?: Uint8Array;
}

/** Pipes the installer into `shell -s -- args`, as `curl … | sh -s -- args` does. */
async function runInstaller(
  shell: { argv: string[] },
  box: Sandbox,
  args: string[] = [],
  options: RunOptions = {},
): Promise<Ran> {
  const [program, ...rest] = shell.argv;
  requireTool(program, program === "busybox" ? "busybox" : program);
  const child = new Deno.Command(requireTool(program), {
    args: [...rest, "-s", "--", ...args],
    clearEnv: true,
    env: {
      HOME: box.home,
      TMPDIR: box.tmp,
      PATH: options.path ?? SYSTEM_PATH,
      PYPRIME_DOWNLOAD_URL: box.url,
      ...options.env,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(options.script ?? SCRIPT);
  await writer.close();
  const out = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** A directory of symlinks to just these system tools, for a PATH without the others. */
async function toolDir(box: Sandbox, tools: string[]): Promise<string> {
  const dir = join(box.root, `tools-${crypto.randomUUID()}`);
  await Deno.mkdir(dir);
  for (const tool of tools) await Deno.symlink(requireTool(tool), join(dir, tool));
  return dir;
}

/** A directory holding one fake tool (a shell script), to put first on PATH. */
async function fakeTool(box: Sandbox, name: string, body: string): Promise<string> {
  const dir = join(box.root, `fake-${name}-${crypto.randomUUID()}`);
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

const BASE_TOOLS = [
  "sh",
  "uname",
  "mkdir",
  "mv",
  "chmod",
  "rm",
  "cp",
  "cat",
  "grep",
  "tr",
  "mktemp",
];

function list(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** Asserts the run installed nothing and left no temp file or directory anywhere. */
function assertNothingInstalled(box: Sandbox, installDir = join(box.home, ".local", "bin")) {
  assert.deepEqual(list(installDir), [], `${installDir} should hold nothing`);
  assert.deepEqual(list(box.tmp), [], "TMPDIR should be empty");
}

async function assertInstalled(box: Sandbox, installDir = join(box.home, ".local", "bin")) {
  assert.deepEqual(list(installDir), ["pyprime"]);
  const path = join(installDir, "pyprime");
  assert.equal(await Deno.readTextFile(path), box.binary);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o755);
  assert.deepEqual(list(box.tmp), [], "TMPDIR should be empty");
}

Deno.test("install.sh is clean under shellcheck -s sh", async () => {
  const shellcheck = requireTool("shellcheck");
  const out = await new Deno.Command(shellcheck, {
    args: ["-s", "sh", SCRIPT_PATH],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
});

Deno.test("install.sh ends by calling main, so a cut download runs nothing", () => {
  const lines = new TextDecoder().decode(SCRIPT).trimEnd().split("\n");
  assert.equal(lines.at(-1), 'main "$@"');
});

for (const shell of SHELLS) {
  const t = (name: string) => `install.sh under ${shell.name}: ${name}`;

  Deno.test(t("installs with curl into ~/.local/bin and says how to get it on PATH"), async () => {
    await withSandbox({}, async (box) => {
      const ran = await runInstaller(shell, box);
      assert.equal(ran.code, 0, ran.stderr);
      await assertInstalled(box);
      assert.deepEqual(box.requests.map((r) => r.path), ["/SHA256SUMS", `/${BINARY}`]);
      assert.ok(
        box.requests.every((r) => r.agent.startsWith("curl/")),
        JSON.stringify(box.requests),
      );
      const bin = join(box.home, ".local", "bin");
      assert.match(ran.stdout, new RegExp(`installed pyprime to ${bin}/pyprime`));
      assert.match(ran.stdout, /is not on your PATH/);
      assert.match(ran.stdout, /export PATH="\$HOME\/\.local\/bin:\$PATH"/);
      assert.equal(ran.stderr, "");
      assert.deepEqual(list(box.home), [".local"], "no profile edits without --modify-path");
    });
  });

  Deno.test(
    t("downloads over HTTPS from an internal CA given in SSL_CERT_FILE / SSL_CERT_DIR"),
    async () => {
      const caDir = await Deno.makeTempDir({ prefix: "pyprime-install-sh-ca-" });
      try {
        const ca = await makeCa(caDir);
        const certs = join(caDir, "certs");
        await Deno.mkdir(certs);
        // OpenSSL's folder layout: the subject hash as the name.
        const hash = await new Deno.Command("openssl", {
          args: ["x509", "-noout", "-subject_hash", "-in", ca.caCert],
          stdout: "piped",
        }).output();
        const name = `${new TextDecoder().decode(hash.stdout).trim()}.0`;
        await Deno.copyFile(ca.caCert, join(certs, name));
        await withSandbox({ tls: ca }, async (box) => {
          assert.ok(box.url.startsWith("https://"));
          for (const tool of ["curl", "wget"]) {
            const tools = await toolDir(box, [...BASE_TOOLS, tool, "sha256sum"]);
            const untrusted = await runInstaller(shell, box, [], { path: tools });
            assert.equal(untrusted.code, 1, `${tool} trusted an unknown CA`);
            assert.match(untrusted.stderr, /^error: cannot download https:/m);
            assertNothingInstalled(box);
            const envs: Record<string, string>[] = [{ SSL_CERT_FILE: ca.caCert }, {
              SSL_CERT_DIR: certs,
            }];
            for (const env of envs) {
              const ran = await runInstaller(shell, box, [], { path: tools, env });
              assert.equal(ran.code, 0, `${tool} ${JSON.stringify(env)}: ${ran.stderr}`);
              await assertInstalled(box);
              await Deno.remove(join(box.home, ".local"), { recursive: true });
            }
          }
        });
      } finally {
        await Deno.remove(caDir, { recursive: true });
      }
    },
  );

  Deno.test(t("installs with wget when curl is missing"), async () => {
    await withSandbox({}, async (box) => {
      const tools = await toolDir(box, [...BASE_TOOLS, "wget", "sha256sum"]);
      const ran = await runInstaller(shell, box, [], { path: tools });
      assert.equal(ran.code, 0, ran.stderr);
      await assertInstalled(box);
      assert.equal(box.requests.length, 2);
      assert.ok(
        box.requests.every((r) => r.agent.startsWith("Wget/")),
        JSON.stringify(box.requests),
      );
    });
  });

  for (const tool of ["shasum", "openssl"]) {
    Deno.test(t(`verifies with ${tool} when it is the only SHA-256 tool`), async () => {
      await withSandbox({}, async (box) => {
        const tools = await toolDir(box, [...BASE_TOOLS, "curl", tool]);
        const ran = await runInstaller(shell, box, [], { path: tools });
        assert.equal(ran.code, 0, ran.stderr);
        await assertInstalled(box);
      });
      const sums = `${"f".repeat(64)}  ${BINARY}\n`;
      await withSandbox({ sums }, async (box) => {
        const tools = await toolDir(box, [...BASE_TOOLS, "curl", tool]);
        const ran = await runInstaller(shell, box, [], { path: tools });
        assert.equal(ran.code, 1);
        assert.match(ran.stderr, /^error: checksum mismatch/m);
        assertNothingInstalled(box);
      });
    });
  }

  Deno.test(t("refuses a checksum mismatch and keeps the old binary"), async () => {
    const sums = `${"0".repeat(64)}  ${BINARY}\n`;
    await withSandbox({ sums }, async (box) => {
      const bin = join(box.home, ".local", "bin");
      await Deno.mkdir(bin, { recursive: true });
      await Deno.writeTextFile(join(bin, "pyprime"), "old pyprime\n", { mode: 0o755 });
      const ran = await runInstaller(shell, box);
      assert.equal(ran.code, 1);
      assert.match(
        ran.stderr,
        new RegExp(
          `^error: checksum mismatch for ${BINARY}: expected 0{64}, got ${sha256(box.binary)}`,
          "m",
        ),
      );
      assert.deepEqual(list(bin), ["pyprime"]);
      assert.equal(await Deno.readTextFile(join(bin, "pyprime")), "old pyprime\n");
      assert.deepEqual(list(box.tmp), []);
    });
  });

  Deno.test(t("refuses when SHA256SUMS has no entry for this platform"), async () => {
    const sums = `${"a".repeat(64)}  pyprime-some-other-target\n`;
    await withSandbox({ sums }, async (box) => {
      const ran = await runInstaller(shell, box);
      assert.equal(ran.code, 1);
      assert.match(
        ran.stderr,
        new RegExp(`^error: .*/SHA256SUMS has no valid entry for ${BINARY}$`, "m"),
      );
      assert.deepEqual(box.requests.map((r) => r.path), ["/SHA256SUMS"]);
      assertNothingInstalled(box);
      assert.deepEqual(list(box.home), []);
    });
  });

  Deno.test(t("fails cleanly when the binary is not on the server (404)"), async () => {
    await withSandbox({ omitBinary: true }, async (box) => {
      const ran = await runInstaller(shell, box);
      assert.equal(ran.code, 1);
      assert.match(ran.stderr, new RegExp(`^error: cannot download ${box.url}${BINARY} `, "m"));
      assertNothingInstalled(box);
      assert.deepEqual(list(box.home), []);
    });
  });

  Deno.test(t("runs nothing when the script is cut short"), async () => {
    await withSandbox({}, async (box) => {
      const text = new TextDecoder().decode(SCRIPT);
      const lineEnds = [...text.matchAll(/\n/g)].map((m) => m.index! + 1);
      // Every tenth line end, a few cuts inside lines, and inside the final `main "$@"`.
      const cuts = lineEnds.filter((_, i) => i % 10 === 0);
      cuts.push(...[0.3, 0.6, 0.9].map((f) => Math.floor(SCRIPT.length * f)));
      const last = text.lastIndexOf('main "$@"');
      cuts.push(last, last + 3, last + 8);
      for (const cut of cuts) {
        const ran = await runInstaller(shell, box, [], { script: SCRIPT.subarray(0, cut) });
        assert.equal(ran.stdout, "", `cut at ${cut} printed: ${ran.stdout}`);
        assert.doesNotMatch(ran.stderr, /^(error|warning): /m, `cut at ${cut}: ${ran.stderr}`);
      }
      assert.deepEqual(box.requests, []);
      assertNothingInstalled(box);
      assert.deepEqual(list(box.home), []);
    });
  });

  Deno.test(t("refuses a musl libc host"), async () => {
    await withSandbox({}, async (box) => {
      const fake = await fakeTool(
        box,
        "ldd",
        'echo "musl libc (x86_64)" >&2\necho "Version 1.2.4" >&2\nexit 1',
      );
      const ran = await runInstaller(shell, box, [], { path: `${fake}:${SYSTEM_PATH}` });
      assert.equal(ran.code, 1);
      assert.match(ran.stderr, /^error: this Linux uses musl libc .*pyprime binaries need glibc/m);
      assert.deepEqual(box.requests, []);
      assertNothingInstalled(box);
    });
  });

  Deno.test(t("refuses an unknown operating system"), async () => {
    await withSandbox({}, async (box) => {
      const fake = await fakeTool(
        box,
        "uname",
        'case "$1" in -s) echo FreeBSD ;; -m) echo amd64 ;; *) echo FreeBSD ;; esac',
      );
      const ran = await runInstaller(shell, box, [], { path: `${fake}:${SYSTEM_PATH}` });
      assert.equal(ran.code, 1);
      assert.match(ran.stderr, /^error: unsupported operating system 'FreeBSD'/m);
      assert.deepEqual(box.requests, []);
    });
  });

  Deno.test(t("maps Darwin arm64 to aarch64-apple-darwin"), async () => {
    await withSandbox({ files: ["pyprime-aarch64-apple-darwin"] }, async (box) => {
      const fake = await fakeTool(
        box,
        "uname",
        'case "$1" in -s) echo Darwin ;; -m) echo arm64 ;; *) echo Darwin ;; esac',
      );
      const ran = await runInstaller(shell, box, [], { path: `${fake}:${SYSTEM_PATH}` });
      assert.equal(ran.code, 0, ran.stderr);
      assert.deepEqual(box.requests.map((r) => r.path), [
        "/SHA256SUMS",
        "/pyprime-aarch64-apple-darwin",
      ]);
      await assertInstalled(box);
    });
  });

  Deno.test(t("--python 3.13 runs `pyprime install 3.13` after installing"), async () => {
    await withSandbox({}, async (box) => {
      const ran = await runInstaller(shell, box, ["--python", "3.13"]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(await Deno.readTextFile(box.log), "install 3.13\n");
      assert.match(ran.stdout, /pyprime 0\.0\.0 \(stand-in\)/);
    });
  });

  Deno.test(t("--modify-path edits ~/.profile and an existing ~/.bashrc once"), async () => {
    await withSandbox({}, async (box) => {
      await Deno.writeTextFile(join(box.home, ".bashrc"), "# mine\n");
      for (let i = 0; i < 2; i++) {
        const ran = await runInstaller(shell, box, ["--modify-path"]);
        assert.equal(ran.code, 0, ran.stderr);
      }
      const line = 'export PATH="$HOME/.local/bin:$PATH"';
      for (const rc of [".profile", ".bashrc"]) {
        const text = await Deno.readTextFile(join(box.home, rc));
        assert.equal(text.split("\n").filter((l) => l === line).length, 1, `${rc}:\n${text}`);
      }
      assert.ok((await Deno.readTextFile(join(box.home, ".bashrc"))).startsWith("# mine\n"));
      assert.deepEqual(list(box.home), [".bashrc", ".local", ".profile"], "no ~/.zshrc created");
    });
  });

  Deno.test(t("--quiet prints nothing on success"), async () => {
    await withSandbox({}, async (box) => {
      const ran = await runInstaller(shell, box, ["--quiet"]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout, "");
      assert.equal(ran.stderr, "");
      await assertInstalled(box);
    });
  });

  Deno.test(
    t("PYPRIME_INSTALL_DIR wins over XDG_BIN_HOME, which wins over ~/.local/bin"),
    async () => {
      await withSandbox({}, async (box) => {
        const chosen = join(box.root, "chosen", "bin");
        const xdg = join(box.root, "xdg-bin");
        let ran = await runInstaller(shell, box, [], {
          env: { PYPRIME_INSTALL_DIR: chosen, XDG_BIN_HOME: xdg },
          path: `${chosen}:${SYSTEM_PATH}`,
        });
        assert.equal(ran.code, 0, ran.stderr);
        await assertInstalled(box, chosen);
        assert.doesNotMatch(ran.stdout, /not on your PATH/);
        ran = await runInstaller(shell, box, [], { env: { XDG_BIN_HOME: xdg } });
        assert.equal(ran.code, 0, ran.stderr);
        await assertInstalled(box, xdg);
        assert.deepEqual(list(box.home), []);
      });
    },
  );

  Deno.test(t("without a SHA-256 tool refuses unless --no-verify"), async () => {
    await withSandbox({}, async (box) => {
      const tools = await toolDir(box, [...BASE_TOOLS, "curl"]);
      let ran = await runInstaller(shell, box, [], { path: tools });
      assert.equal(ran.code, 1);
      assert.match(
        ran.stderr,
        /^error: cannot verify the download: none of sha256sum, shasum or openssl/m,
      );
      assert.equal(box.requests.length, 0);
      assertNothingInstalled(box);
      ran = await runInstaller(shell, box, ["--no-verify"], { path: tools });
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stderr, /^warning: not verifying/m);
      await assertInstalled(box);
      assert.deepEqual(box.requests.map((r) => r.path), [`/${BINARY}`]);
    });
  });

  Deno.test(t("refuses a plain-http download URL that is not loopback"), async () => {
    await withSandbox({}, async (box) => {
      const ran = await runInstaller(shell, box, [], {
        env: { PYPRIME_DOWNLOAD_URL: "http://example.com/releases" },
      });
      assert.equal(ran.code, 1);
      assert.match(ran.stderr, /^error: PYPRIME_DOWNLOAD_URL must be an https:\/\/ URL/m);
      assertNothingInstalled(box);
    });
  });

  Deno.test(t("rejects an unknown option with exit code 2"), async () => {
    await withSandbox({}, async (box) => {
      const ran = await runInstaller(shell, box, ["--frobnicate"]);
      assert.equal(ran.code, 2);
      assert.match(ran.stderr, /^error: unknown option '--frobnicate'$/m);
      assert.deepEqual(box.requests, []);
    });
  });
}
