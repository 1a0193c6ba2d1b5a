/**
 * The scale tier (not part of `npm test`; run it with `npm run test:scale`; about a minute here):
 * 80 bare redis-server processes; shardform creates 30 shards with one replica each (60 nodes), the
 * cluster gets 1,000,000 keys, and the same spec grown to 40 shards scales it out (10 new masters,
 * each with a replica). Each apply ends with the full checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { fullChecks } from "../helpers/verify.js";

// Ports 20000-20079 (bus 30000-30079): this tier's own range, below the kernel's outgoing range.
const BASE = 20_000;
const NODES = 80;
const KEYS = 1_000_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

/** Shard i: master node 2i, replica node 2i+1. */
function spec(name: string, shards: number): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`];
  for (let i = 0; i < shards; i++) lines.push(`  - master: ${a(2 * i)}`, `    replicas: [${a(2 * i + 1)}]`);
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

beforeAll(async () => {
  sb = await startNodes(BASE, NODES, undefined, { nodeTimeoutMs: 5000 });
  work = mkdtempSync(join(tmpdir(), "shardform-scale-"));
});
afterAll(async () => {
  await sb?.stop();
});

describe("60 nodes and 1,000,000 keys", { timeout: 900_000 }, () => {
  it("creates 30 shards with a replica each from bare processes", async () => {
    const s = spec("create", 30);
    const r = await runCli(["apply", s, "--auto-approve"]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
    await fullChecks(a(0), 60, KEYS, s);
  });

  it("scales out from 30 to 40 masters, each new one with a replica, every key kept", async () => {
    const s = spec("out", 40);
    const planFile = join(work, "out.json");
    const p = await runCli(["plan", s, "--out", planFile, "--detailed-exitcode"]);
    expect(p.code).toBe(2);
    const r = await runCli(["apply", planFile, "--auto-approve"]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await fullChecks(a(0), 80, KEYS, s);
  });
});
