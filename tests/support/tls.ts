/**
 * An internal certificate authority for tests, made with openssl: a CA certificate and
 * a server certificate it signed for 127.0.0.1 and localhost.
 *
 * @module
 */
import { join } from "node:path";

/** The PEM files of {@link makeCa}. */
export interface TestCa {
  /** The CA certificate: what `SSL_CERT_FILE` points at. */
  caCert: string;
  /** The server certificate, signed by the CA. */
  cert: string;
  /** The server's private key. */
  key: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Creates a CA and a server certificate for 127.0.0.1 in `dir`. */
export async function makeCa(dir: string): Promise<TestCa> {
  await Deno.mkdir(dir, { recursive: true });
  const days = ["-days", "2"];
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    ...days,
    "-subj",
    "/CN=pyprime test internal CA",
  ]);
  await openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    ...days,
    "-extfile",
    "server.ext",
  ]);
  return {
    caCert: join(dir, "ca.pem"),
    cert: join(dir, "server.pem"),
    key: join(dir, "server.key"),
  };
}

/** An htpasswd line for `user` with an apr1 hash made by `openssl passwd -apr1`. */
export async function htpasswdLine(user: string, password: string): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["passwd", "-apr1", "-stdin"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(password + "\n"));
  await writer.close();
  const result = await out.output();
  if (!result.success) throw new Error(new TextDecoder().decode(result.stderr));
  return `${user}:${new TextDecoder().decode(result.stdout).trim()}\n`;
}
