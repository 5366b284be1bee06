/**
 * Debian's nginx as a test mirror: started on a free loopback port with a config file
 * written into a temp dir of its own (prefix, pid, logs and temp paths all there, so
 * nothing outside it is touched), as one process (`master_process off`, `daemon off`),
 * and stopped by {@link Nginx.stop}. Its access log is JSON lines, one per request.
 *
 * @example
 * ```ts
 * const nginx = await startNginx({ root: mirrorDir });
 * try {
 *   // pyprime install 3.12 --mirror nginx.url
 * } finally {
 *   await nginx.stop();
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Folder served at `/`. */
  root: string;
  /** Serve HTTPS with this certificate chain and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Require HTTP Basic auth checked against this htpasswd file. */
  htpasswd?: string;
  /** Directory listings (`autoindex on`) for folders; default true. */
  autoindex?: boolean;
  /** Extra directives inside `server { }`. */
  serverExtra?: string;
}

/** One line of the access log. */
export interface AccessEntry {
  /** `GET`, `HEAD`, … */
  method: string;
  /** The request URI as received (still percent-encoded). */
  uri: string;
  /** The status nginx answered. */
  status: number;
  /** The `Range` request header, `""` when absent. */
  range: string;
  /** The `If-Range` request header, `""` when absent. */
  ifRange: string;
  /** The Basic auth user name, `""` when none. */
  user: string;
  /** The `Authorization` header as received, `""` when none (to prove none was sent). */
  auth: string;
  /** Body bytes sent. */
  bytes: number;
}

/** A running nginx. */
export interface Nginx {
  /** `http(s)://127.0.0.1:PORT`, without a trailing slash. */
  url: string;
  /** The port it listens on. */
  port: number;
  /** Its private folder: config, logs, pid, temp paths. */
  dir: string;
  /** The requests answered so far, oldest first. */
  requests(): Promise<AccessEntry[]>;
  /** The same, read synchronously (for request logs shaped like the fault server's). */
  requestsSync(): AccessEntry[];
  /** Stops nginx and waits until the process is gone; removes its folder. */
  stop(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function config(dir: string, port: number, options: NginxOptions): string {
  const tls = options.tls;
  const auth = options.htpasswd
    ? `auth_basic "pyprime test mirror";\n      auth_basic_user_file ${options.htpasswd};`
    : "";
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  log_format pyprime escape=json '{"method":"$request_method","uri":"$request_uri",'
    '"status":$status,"range":"$http_range","ifRange":"$http_if_range",'
    '"user":"$remote_user","auth":"$http_authorization","bytes":$body_bytes_sent}';
  access_log ${dir}/access.log pyprime;
  default_type application/octet-stream;
  types { text/html html; text/plain txt; }
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port}${tls ? " ssl" : ""};
    ${tls ? `ssl_certificate ${tls.cert};\n    ssl_certificate_key ${tls.key};` : ""}
    root ${options.root};
    autoindex ${options.autoindex === false ? "off" : "on"};
    location / {
      ${auth}
    }
    ${options.serverExtra ?? ""}
  }
}
`;
}

async function waitForPort(port: number, child: Deno.ChildProcess, dir: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      const log = await Deno.readTextFile(join(dir, "error.log")).catch(() => "");
      if (exited || Date.now() > deadline) throw new Error(`nginx did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Starts nginx serving `options.root`; see the module doc. */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "pyprime-nginx-" });
  const port = freePort();
  const conf = join(dir, "nginx.conf");
  await Deno.writeTextFile(conf, config(dir, port, options));
  const child = new Deno.Command("nginx", {
    args: ["-p", `${dir}/`, "-c", conf, "-e", join(dir, "error.log")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForPort(port, child, dir);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const scheme = options.tls ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    dir,
    requests: async () => {
      const text = await Deno.readTextFile(join(dir, "access.log")).catch(() => "");
      return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
    },
    requestsSync: () => {
      let text = "";
      try {
        text = Deno.readTextFileSync(join(dir, "access.log"));
      } catch {
        // no request yet
      }
      return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
    },
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      // One process (master_process off): once it is reaped nothing of it is left.
      const left = await Deno.stat(`/proc/${child.pid}`).then(() => true, () => false);
      if (left) throw new Error(`nginx ${child.pid} is still running`);
      await Deno.remove(dir, { recursive: true });
    },
  };
}
