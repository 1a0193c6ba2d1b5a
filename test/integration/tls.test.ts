/**
 * A TLS-only cluster (sandbox --tls: a CA and certificates made with openssl; tls-cluster and
 * tls-replication too): apply creates it from bare nodes with the spec's tls section, populate writes
 * over TLS, a scale-out moves keys between TLS nodes (MIGRATE over TLS), a saved plan remembers the CA
 * file, and the errors say what to do: a plain connection to a TLS port, a CA that did not sign the
 * nodes' certificates, an expired certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient, type Access } from "../../src/redis/connect.js";
import { readSandbox } from "../../src/sandbox/local.js";
import { makeExpiredCert, makeTlsFiles } from "../../src/sandbox/tls.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { fullChecks } from "../helpers/verify.js";

// Ports 22300-22307 (bus 32300-32307): this file's own range.
const BASE = 22300;
const KEYS = 20_000;
let sb: TestSandbox;
let work: string;
let ca = "";
let access: Access;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

function spec(name: string, shards: [number, number[]][]): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}"]`, `  tls: { ca: ${ca} }`, `shards:`];
  for (const [m, reps] of shards) lines.push(`  - master: ${a(m)}`, ...(reps.length ? [`    replicas: [${reps.map(a).join(", ")}]`] : []));
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 8, undefined, { tls: true });
  work = mkdtempSync(join(tmpdir(), "shardform-tls-"));
  ca = readSandbox(sb.dir)!.tls!.ca;
  access = { tls: { ca: readFileSync(ca) } };
});
afterAll(async () => {
  await sb?.stop();
});

const checks = () => ({ access, cliArgs: ["--tls", "--cacert", ca] });

describe("a TLS-only cluster", { timeout: 120_000 }, () => {
  it("is created from bare nodes with the spec's tls section, and populated over TLS", async () => {
    const f = spec("create", [[0, [3]], [1, [4]], [2, [5]]]);
    const r = await runCli(["apply", f, "--auto-approve"]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await populate(await observeCluster({ seeds: [a(0)], access }), { keys: KEYS, access });
    await fullChecks(a(0), 6, KEYS, f, checks());
  });

  it("scales out from a saved plan, which remembers the CA file; keys move between TLS nodes", async () => {
    const f = spec("out", [[0, [3]], [1, [4]], [2, [5]], [6, [7]]]);
    const planFile = join(work, "out.json");
    expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
    expect(JSON.parse(readFileSync(planFile, "utf8")).access).toEqual({ tls: { ca } });
    const r = await runCli(["apply", planFile, "--max-latency-ms", "10"]);
    expect(r.stderr).toContain("Apply complete");
    // the latency probes speak TLS too: their PINGs were answered
    expect(r.stderr).toMatch(/^Latency: budget 10 ms; a PING on the moving nodes waited /m);
    expect(r.code).toBe(0);
    await fullChecks(a(0), 8, KEYS, f, checks());
  });

  it("import over TLS writes the CA path relative to the spec it writes, and plan of that spec reports no changes", async () => {
    const out = join(work, "specs", "imported.yaml");
    mkdirSync(join(work, "specs"), { recursive: true });
    const imp = await runCli(["import", "--seed", a(0), "--tls", "--cacert", ca, "--out", out]);
    expect(imp.code).toBe(0);
    const text = readFileSync(out, "utf8");
    expect(text).toContain(`ca: ${relative(join(work, "specs"), ca)}`);
    expect((await runCli(["fmt", "--check", out])).code).toBe(0);
    const p = await runCli(["plan", out, "--detailed-exitcode"]);
    expect(p.stdout).toContain("No changes.");
    expect(p.code).toBe(0);
  });

  it("a plain connection to a TLS port says to use TLS", async () => {
    const r = await runCli(["check", "--seed", a(0)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach 127\.0\.0\.1:22300: .*If the node only accepts TLS, pass --tls \(and --cacert\), or the spec's tls section\./);
  });

  it("a CA that did not sign the nodes' certificates is named as such", async () => {
    const other = join(work, "other-ca");
    mkdirSync(other);
    const files = makeTlsFiles(other, ["127.0.0.1"]);
    const r = await runCli(["check", "--seed", a(0), "--cacert", files.ca]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach 127\.0\.0\.1:22300: its TLS certificate is not signed by the CA shardform was given .*Pass the CA that signed the nodes' certificates with --cacert/);
  });

  it("an expired certificate is named as such", async () => {
    // A node that now serves a certificate which expired in 2021 (signed by the right CA).
    const expired = makeExpiredCert(join(sb.dir, "tls"), ["127.0.0.1"]);
    const c = await NodeClient.connect(a(7), { access });
    await c.call("config", "set", "tls-cert-file", expired.cert, "tls-key-file", expired.key);
    await c.close();
    const r = await runCli(["check", "--seed", a(7), "--cacert", ca]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach 127\.0\.0\.1:22307: its TLS certificate has expired .*Renew the node's certificate/);
  });
});
