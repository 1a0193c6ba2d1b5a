/**
 * A node is its node id, whatever address names it: a cluster that announces 127.0.0.1 reached and
 * written as localhost (seeds, spec entries, new nodes), a hostname a node announces, and the one real
 * ambiguity (one node listed twice under two spellings). Also: right after `redis-cli --cluster create`
 * the members still disagree for a moment; import and plan wait for them instead of refusing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { fullChecks } from "../helpers/verify.js";

// Ports 22500-22507 (bus 32500-32507): this file's own range.
const BASE = 22500;
const KEYS = 10_000;
let sb: TestSandbox;
let work: string;
const ip = (i: number) => `127.0.0.1:${BASE + i}`;
const lh = (i: number) => `localhost:${BASE + i}`;

function spec(name: string, shards: [string, string[]][], seeds = [ip(0)]): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: [${seeds.map((s) => `"${s}"`).join(", ")}]`, `shards:`];
  for (const [m, reps] of shards) lines.push(`  - master: ${m}`, ...(reps.length ? [`    replicas: [${reps.join(", ")}]`] : []));
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 8);
  work = mkdtempSync(join(tmpdir(), "shardform-identity-"));
});
afterAll(async () => {
  await sb?.stop();
});

describe("a node is its node id", { timeout: 120_000 }, () => {
  it("right after redis-cli --cluster create, import waits for the members to agree, and plan of its spec reports no changes", async () => {
    const r = spawnSync("redis-cli", ["--cluster", "create", ...[0, 1, 2, 3, 4, 5].map(ip), "--cluster-replicas", "1", "--cluster-yes"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const f = join(work, "imported.yaml");
    const imp = await runCli(["import", "--seed", ip(0), "--out", f]);
    expect(imp.stderr).not.toMatch(/Error/);
    expect(imp.stderr).toContain(`Wrote ${f}; check it with \`shardform plan ${f}\`.`);
    expect(imp.code).toBe(0);
    const p = await runCli(["plan", f, "--detailed-exitcode"]);
    expect(p.stdout).toContain("No changes.");
    expect(p.code).toBe(0);
    await populate(await observeCluster({ seeds: [ip(0)] }), { keys: KEYS });
  });

  it("seeds and spec entries written as localhost name the members that announce 127.0.0.1", async () => {
    const imported = join(work, "imported.yaml");
    const viaLocalhost = await runCli(["plan", imported, "--seed", lh(2), "--detailed-exitcode"]);
    expect(viaLocalhost.stderr).toBe("");
    expect(viaLocalhost.code).toBe(0);
    const c = await runCli(["check", "--seed", lh(1)]);
    expect(c.stdout).not.toMatch(/Disagreements/);
    expect(c.code).toBe(0);
    // import through a localhost seed writes localhost for every member, consistently
    const imp = await runCli(["import", "--seed", lh(0)]);
    expect(imp.code).toBe(0);
    expect(imp.stdout).not.toContain("127.0.0.1");
    expect(imp.stdout.match(/localhost:\d+/g)!.length).toBeGreaterThanOrEqual(7);
    const f = join(work, "localhost.yaml");
    writeFileSync(f, imp.stdout);
    // Ready to commit: canonical as written, and its $schema names the schema file (relative to the current directory here).
    expect((await runCli(["fmt", "--check", f])).code).toBe(0);
    const schemaRef = /\$schema=(\S+)/.exec(imp.stdout)![1]!;
    expect(existsSync(resolve(schemaRef))).toBe(true);
    const out = join(work, "imported-out.yaml");
    expect((await runCli(["import", "--seed", lh(0), "--out", out])).code).toBe(0);
    expect(existsSync(resolve(work, /\$schema=(\S+)/.exec(readFileSync(out, "utf8"))![1]!))).toBe(true);
    const p = await runCli(["plan", f, "--detailed-exitcode"]);
    expect(p.stdout).toContain("No changes.");
    // One note for all of them, not one per node.
    expect(p.stdout).toMatch(/Note: \d+ addresses in the spec are members written another way \(it answered with that node's id\): localhost:22500 is 127\.0\.0\.1:22500 \([0-9a-f]{8}\), /);
    expect(p.stdout.match(/^Note: .*written another way/gm)?.length).toBe(1);
    expect(p.code).toBe(0);
  });

  it("a new shard written as localhost is added, and the same spec then plans no changes", async () => {
    const o = await observeCluster({ seeds: [ip(0)] });
    const shards: [string, string[]][] = o.nodes
      .filter((n) => n.role === "master")
      .map((m) => [m.addr.replace("127.0.0.1", "localhost"), o.nodes.filter((r) => r.masterId === m.id).map((r) => r.addr.replace("127.0.0.1", "localhost"))]);
    const f = spec("add-localhost", [...shards, [lh(6), [lh(7)]]], [lh(0)]);
    const r = await runCli(["apply", f, "--auto-approve"]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await fullChecks(ip(0), 8, KEYS, f);
  });

  it("a hostname a node announces names it, even when it does not resolve here", async () => {
    const c = await NodeClient.connect(ip(7));
    await c.call("config", "set", "cluster-announce-hostname", "shard-d.shardform.invalid");
    await c.close();
    // until its peers have it too (it spreads by gossip)
    const peer = await NodeClient.connect(ip(0));
    for (let i = 0; i < 100 && !String(await peer.call("cluster", "nodes")).includes(",shard-d.shardform.invalid "); i++) await sleep(100);
    await peer.close();
    const text = readFileSync(join(work, "add-localhost.yaml"), "utf8").replace(`replicas: [${lh(7)}]`, `replicas: [shard-d.shardform.invalid:${BASE + 7}]`);
    const f = join(work, "hostname.yaml");
    writeFileSync(f, text);
    // The replica cannot be reached under that name (it does not resolve), nor at all while paused:
    // it is matched by the hostname it announces, as its peers report it.
    sb.pause(BASE + 7);
    try {
      const p = await runCli(["plan", f, "--observed", await snapshotOf(f)]);
      expect(p.stdout).toMatch(/Note: shard-d\.shardform\.invalid:22507 in the spec is the member 127\.0\.0\.1:22507 \([0-9a-f]{8}\): the node announces that hostname/);
    } finally {
      sb.resume(BASE + 7);
    }
    const live = await runCli(["plan", f, "--detailed-exitcode"]);
    expect(live.stdout).toContain("No changes.");
    expect(live.code).toBe(0);
  });

  it("one node listed twice under two spellings is the one ambiguity refused", async () => {
    const f = spec("twice", [[ip(0), [lh(0)]]]);
    const p = await runCli(["plan", f]);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/127\.0\.0\.1:22500 and localhost:22500 in the spec are the same node \(id [0-9a-f]{8}\): list it once, under one address/);
  });
});

/** A snapshot taken while node 7 is paused: its spec name is probed and does not answer. */
async function snapshotOf(specFile: string): Promise<string> {
  const out = join(work, "snapshot.json");
  const r = await runCli(["snapshot", "--seed", ip(0), "--spec", specFile, "--out", out]);
  expect(r.code).toBe(0);
  return out;
}
