/**
 * Debian's tinyproxy as a real forward proxy for tests: started in the foreground on a
 * free loopback port with a config file written into its own temp dir, its log there
 * too, and stopped by {@link Tinyproxy.stop}.
 *
 * @module
 */
import { join } from "node:path";
import { freePort } from "./nginx.ts";

/** A running tinyproxy. */
export interface Tinyproxy {
  /** `http://127.0.0.1:PORT`, the value for `HTTP_PROXY`/`HTTPS_PROXY`. */
  url: string;
  /** The requests it handled, as logged: `GET http://…` and `CONNECT host:port` lines. */
  requests(): Promise<string[]>;
  /** Stops tinyproxy, waits until it is gone, removes its folder. */
  stop(): Promise<void>;
}

/** Starts tinyproxy on 127.0.0.1, allowing only 127.0.0.1 and any CONNECT port. */
export async function startTinyproxy(): Promise<Tinyproxy> {
  const dir = await Deno.makeTempDir({ prefix: "pyprime-tinyproxy-" });
  const port = freePort();
  const log = join(dir, "tinyproxy.log");
  const conf = join(dir, "tinyproxy.conf");
  await Deno.writeTextFile(
    conf,
    [
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Timeout 60",
      `LogFile "${log}"`,
      "LogLevel Info",
      `PidFile "${join(dir, "tinyproxy.pid")}"`,
      "MaxClients 20",
      "Allow 127.0.0.1",
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("tinyproxy", {
    args: ["-d", "-c", conf],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    const left = await Deno.stat(`/proc/${child.pid}`).then(() => true, () => false);
    if (left) throw new Error(`tinyproxy ${child.pid} is still running`);
    await Deno.remove(dir, { recursive: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await Deno.readTextFile(log).catch(() => "");
    if (text.includes("Accepting connections")) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`tinyproxy did not start:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    requests: async () => {
      const text = await Deno.readTextFile(log);
      return [...text.matchAll(/Request \(file descriptor \d+\): (.*)$/gm)].map((m) => m[1]);
    },
    stop,
  };
}
