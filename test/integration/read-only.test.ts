/**
 * The read-only half on a real cluster: import -> plan reports no changes, a snapshot plans like the
 * live cluster, check reports health, and MONITOR on every node proves that plan, import, snapshot
 * and check send no command that changes the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { createCluster, startNodes, waitReplicasCaughtUp, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";

// Ports 21100-21107 (bus 31100-31107): this file's own range.
const BASE = 21100;
let sb: TestSandbox;
let work: string;
const monitors: Redis[] = [];
const seen: string[] = [];

beforeAll(async () => {
  sb = await startNodes(BASE, 8);
  await createCluster(sb.addrs.slice(0, 6), 1);
  await populate(await observeCluster({ seeds: [sb.addrs[0]!] }), { keys: 20_000 });
  // The replicas must have applied those SETs before MONITOR starts, or it would show them.
  await waitReplicasCaughtUp(sb.addrs.slice(0, 6));
  work = mkdtempSync(join(tmpdir(), "shardform-readonly-"));
  // MONITOR every node from here on: it shows every command any client sends.
  for (const a of sb.addrs) {
    const [host, port] = a.split(":");
    const r = new Redis({ host: host!, port: Number(port), protocol: 2, lazyConnect: true });
    await r.connect();
    const m = await r.monitor();
    m.on("monitor", (_time: string, args: string[]) => seen.push(`${a} ${args.join(" ")}`));
    monitors.push(m, r);
  }
});
afterAll(async () => {
  for (const m of monitors) m.disconnect();
  await sb?.stop();
});

const MUTATING = /^(set|del|flushall|flushdb|migrate|restore|config set|cluster (meet|forget|addslots|addslotsrange|delslots|setslot|replicate|reset|failover|set-config-epoch|bumpepoch|saveconfig))\b/i;
const READS = new Set(["ping", "info", "dbsize", "cluster nodes", "cluster info", "cluster myid", "replconf", "quit", "client setinfo", "monitor"]);

describe("read-only commands on a live cluster", () => {
  it("import writes a spec on which plan reports no changes (exit 0 with --detailed-exitcode)", async () => {
    const spec = join(work, "imported.yaml");
    const imp = await runCli(["import", "--seed", sb.addrs[0]!, "--out", spec]);
    expect(imp.code).toBe(0);
    const text = readFileSync(spec, "utf8");
    expect(text).toContain(`master: ${sb.addrs[0]}`);
    const plan = await runCli(["plan", spec, "--detailed-exitcode"]);
    expect(plan.stderr).toBe("");
    expect(plan.stdout).toContain("No changes.");
    expect(plan.code).toBe(0);
  });

  it("plans a fourth shard: 1 meet per new node, 1 replicate, 4096 slot moves, exit 2", async () => {
    const spec = join(work, "scale.yaml");
    writeFileSync(spec, readFileSync(join(work, "imported.yaml"), "utf8"));
    appendFileSync(spec, `  - master: ${sb.addrs[6]}\n    replicas: [${sb.addrs[7]}]\n`);
    const planFile = join(work, "plan.json");
    const r = await runCli(["plan", spec, "--detailed-exitcode", "--out", planFile]);
    expect(r.code).toBe(2);
    const plan = JSON.parse(readFileSync(planFile, "utf8"));
    const count = (k: string) => plan.steps.filter((s: { kind: string }) => s.kind === k).length;
    expect([count("meet"), count("replicate"), count("migrate-slot"), plan.steps.length]).toEqual([2, 1, 4096, 4099]);
    expect(r.stdout).toMatch(/Plan: 2 nodes to add, 0 to remove, 1 replica to change, 4096 slots to move \(~5\.0K keys\)\./);
    // a plan from a snapshot is the same plan
    const snap = join(work, "snap.json");
    expect((await runCli(["snapshot", "--seed", sb.addrs[3]!, "--spec", spec, "--out", snap])).code).toBe(0);
    const offline = await runCli(["plan", spec, "--observed", snap, "--json"]);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout).steps).toEqual(plan.steps);
    expect(JSON.parse(offline.stdout).observed.fingerprint).toBe(plan.observed.fingerprint);
    // markdown and show work from the saved plan
    const md = await runCli(["show", planFile, "--markdown"]);
    expect(md.stdout).toContain("<details><summary>All 4099 steps</summary>");
  });

  it("check reports a healthy cluster and exits 0; --json is machine-readable", async () => {
    const r = await runCli(["check", "--seed", sb.addrs[0]!]);
    expect(r.stdout + r.stderr).not.toContain("[ERR]");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Cluster: 6 nodes \(3 masters, 3 replicas\), slots 16384\/16384, ~20000 keys, cluster_state ok/);
    expect(r.stdout).toContain("[OK]");
    const j = JSON.parse((await runCli(["check", "--seed", sb.addrs[0]!, "--json"])).stdout);
    expect(j.healthy).toBe(true);
    expect(j.imbalance.band).toBe("excellent");
  });

  it("check reports an open slot as unhealthy and exits 1", async () => {
    const o = await observeCluster({ seeds: [sb.addrs[0]!] });
    const [a, b] = o.nodes.filter((n) => n.role === "master");
    const slot = a!.slots[0]![0];
    const ca = await NodeClient.connect(a!.addr);
    try {
      await ca.call("cluster", "setslot", slot, "migrating", b!.id);
      const r = await runCli(["check", "--seed", sb.addrs[0]!]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`slot ${slot}: MIGRATING on ${a!.addr} to ${b!.addr}`);
      // and plan proposes to finish it first
      const p = await runCli(["plan", join(work, "imported.yaml"), "--json"]);
      expect(JSON.parse(p.stdout).steps[0]).toMatchObject({ kind: "migrate-slot", slot, from: { addr: a!.addr }, to: { addr: b!.addr } });
    } finally {
      await ca.call("cluster", "setslot", slot, "stable");
      await ca.close();
    }
  });

  it("refuses a node that belongs to another cluster, and changes nothing", async () => {
    const other = await NodeClient.connect(sb.addrs[7]!);
    try {
      await other.call("cluster", "addslots", 0);
      const spec = join(work, "scale.yaml");
      const before = await observeCluster({ seeds: [sb.addrs[0]!], probe: sb.addrs });
      const r = await runCli(["plan", spec]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/127\.0\.0\.1:21107 knows 0 other node\(s\) and owns 1 slot range\(s\): shardform never resets a node on its own/);
      const after = await observeCluster({ seeds: [sb.addrs[0]!], probe: sb.addrs });
      expect(after.outsiders).toEqual(before.outsiders);
    } finally {
      await other.call("cluster", "delslots", 0);
      await other.close();
    }
  });

  it("a read-only connection refuses a mutating command before sending it", async () => {
    const c = await NodeClient.connect(sb.addrs[0]!, { readOnly: true });
    try {
      await expect(c.call("cluster", "meet", "127.0.0.1", 1)).rejects.toThrow(/read-only connection .* "cluster meet"/);
      await expect(c.call("set", "k", "v")).rejects.toThrow(/read-only/);
    } finally {
      await c.close();
    }
  });

  it("MONITOR saw only reads from plan, import, snapshot and check (apart from the test's own setup)", () => {
    const ours = seen.filter((l) => !/ (cluster setslot|cluster addslots|cluster delslots) /i.test(` ${l.split(" ").slice(1).join(" ")} `));
    const names = new Set(
      ours.map((l) => {
        const [, first, second] = l.split(" ");
        const f = (first ?? "").toLowerCase();
        return f === "cluster" || f === "client" || f === "config" ? `${f} ${(second ?? "").toLowerCase()}` : f;
      }),
    );
    expect(ours.length).toBeGreaterThan(50);
    expect([...names].filter((n) => MUTATING.test(n))).toEqual([]);
    expect([...names].filter((n) => !READS.has(n))).toEqual([]);
  });
});
