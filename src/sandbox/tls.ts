/**
 * Certificates for a TLS sandbox, made with the `openssl` command: a CA, one certificate the nodes
 * share (for clients, the cluster bus and replication; its names are the sandbox's loopback
 * addresses and localhost), and a client certificate. Test helpers also make an expired one.
 */
import { makeDirs } from "../util/make-dirs.js";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SandboxError } from "../errors.js";

export interface TlsFiles {
  ca: string;
  caKey: string;
  nodeCert: string;
  nodeKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error) throw new SandboxError(`the openssl command is needed for a TLS sandbox: ${r.error.message}. Install it (Debian/Ubuntu: apt-get install openssl).`);
  if (r.status !== 0) throw new SandboxError(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

function key(dir: string, name: string): string {
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name], dir);
  return join(dir, name);
}

/** A certificate signed by the CA in `dir`, with the given names; valid 10 years. */
function signed(dir: string, name: string, cn: string, altNames: string[]): { cert: string; key: string } {
  const k = key(dir, `${name}.key`);
  openssl(["req", "-new", "-key", k, "-subj", `/CN=${cn}`, "-out", `${name}.csr`], dir);
  writeFileSync(join(dir, `${name}.ext`), altNames.length ? `subjectAltName=${altNames.join(",")}\n` : "\n");
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
  return { cert: join(dir, `${name}.crt`), key: k };
}

export function makeTlsFiles(dir: string, hosts: string[]): TlsFiles {
  makeDirs(dir);
  const caKey = key(dir, "ca.key");
  openssl(["req", "-x509", "-new", "-key", caKey, "-sha256", "-days", "3650", "-subj", "/CN=shardform sandbox CA", "-out", "ca.crt"], dir);
  const names = [...new Set(["127.0.0.1", ...hosts])].map((h) => `IP:${h}`).concat("DNS:localhost");
  const node = signed(dir, "node", "shardform-sandbox-node", names);
  const client = signed(dir, "client", "shardform-client", []);
  return { ca: join(dir, "ca.crt"), caKey, nodeCert: node.cert, nodeKey: node.key, clientCert: client.cert, clientKey: client.key };
}

/** A node certificate signed by the CA in `dir` that expired in 2021 (`openssl ca` can backdate; `req -days` cannot). */
export function makeExpiredCert(dir: string, hosts: string[]): { cert: string; key: string } {
  const k = key(dir, "expired.key");
  openssl(["req", "-new", "-key", k, "-subj", "/CN=shardform-expired", "-out", "expired.csr"], dir);
  makeDirs(join(dir, "ca-db"));
  writeFileSync(join(dir, "ca-db", "index.txt"), "");
  writeFileSync(join(dir, "ca-db", "serial"), "1000\n");
  const names = [...new Set(["127.0.0.1", ...hosts])].map((h) => `IP:${h}`).concat("DNS:localhost");
  writeFileSync(
    join(dir, "ca.cnf"),
    [
      "[ ca ]",
      "default_ca = sandbox",
      "[ sandbox ]",
      `dir = ${dir}`,
      "database = $dir/ca-db/index.txt",
      "serial = $dir/ca-db/serial",
      "new_certs_dir = $dir/ca-db",
      "certificate = $dir/ca.crt",
      "private_key = $dir/ca.key",
      "default_md = sha256",
      "policy = anything",
      "unique_subject = no",
      "copy_extensions = none",
      "x509_extensions = ext",
      "[ anything ]",
      "commonName = supplied",
      "[ ext ]",
      `subjectAltName = ${names.join(",")}`,
      "",
    ].join("\n"),
  );
  openssl(["ca", "-batch", "-config", "ca.cnf", "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-in", "expired.csr", "-out", "expired.crt"], dir);
  return { cert: join(dir, "expired.crt"), key: k };
}
