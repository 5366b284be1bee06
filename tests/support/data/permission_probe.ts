/**
 * Tries one privileged operation under whatever permissions it was started with and
 * prints one JSON line: `{"ok":true,"value":…}` (exit 0) or
 * `{"ok":false,"name":"NotCapable","message":…}` (exit 1). tests/dist/permissions_test.ts runs
 * it with the flags of the `pyprime` task.
 *
 * ```sh
 * deno run <flags> tests/support/data/permission_probe.ts env HOME
 * deno run <flags> tests/support/data/permission_probe.ts fs /tmp/scratch
 * ```
 *
 * @module
 */

type Probe = (arg: string) => unknown | Promise<unknown>;

const PROBES: Record<string, Probe> = {
  env: (name) => Deno.env.get(name) ?? null,
  ffi: (library) => {
    Deno.dlopen(library, {}).close();
    return library;
  },
  import: async (url) => Object.keys(await import(url)),
  sys: (api) => {
    if (api === "osRelease") return Deno.osRelease();
    if (api === "hostname") return Deno.hostname();
    throw new Error(`unknown sys api ${api}`);
  },
  spawn: async (text) => {
    const out = await new Deno.Command("sh", {
      args: ["-c", 'printf "%s" "$1"', "sh", text],
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    }).output();
    return new TextDecoder().decode(out.stdout);
  },
  fs: async (dir) => {
    const file = `${dir}/file.txt`;
    await Deno.writeTextFile(file, "written");
    await Deno.symlink("file.txt", `${dir}/link`);
    return {
      read: await Deno.readTextFile(`${dir}/link`),
      link: await Deno.readLink(`${dir}/link`),
    };
  },
};

function report(result: Record<string, unknown>): void {
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result) + "\n"));
}

async function main(what: string, arg: string): Promise<number> {
  const probe = PROBES[what];
  if (!probe) {
    report({ ok: false, name: "Usage", message: `unknown probe ${what}` });
    return 2;
  }
  try {
    report({ ok: true, value: await probe(arg) });
    return 0;
  } catch (error) {
    const e = error as Error;
    report({ ok: false, name: e.name, message: e.message });
    return 1;
  }
}

Deno.exit(await main(Deno.args[0] ?? "", Deno.args[1] ?? ""));
