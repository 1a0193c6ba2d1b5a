/**
 * The read-only half on a real cluster: import -> plan reports no changes, a snapshot plans like the
 * live cluster, check reports health, and proof that plan, import, snapshot and check send no command
 * that changes the cluster, two ways:
 *  - INFO commandstats on every node, read before and after each of those commands runs, counts every
 *    command executed meanwhile, admin commands included (MONITOR does not show CLUSTER SETSLOT, CONFIG
 *    and other admin commands at all);
 *  - MONITOR on every node, with each command attributed to the connection that sent it by the name
 *    shardform's connections give themselves (CLIENT SETNAME shardform-<command>), not by its name.
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
/** Every command any client sent to any node, with the client's address as the node saw it. */
const seen: { node: string; source: string; args: string[] }[] = [];

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
    m.on("monitor", (_time: string, args: string[], source: string) => seen.push({ node: a, source, args }));
    monitors.push(m, r);
  }
});
afterAll(async () => {
  for (const m of monitors) m.disconnect();
  await sb?.stop();
});

const MUTATING = /^(set|del|flushall|flushdb|migrate|restore|config set|cluster (meet|forget|addslots|addslotsrange|delslots|setslot|replicate|reset|failover|set-config-epoch|bumpepoch|saveconfig))\b/i;
// Every command plan, import, snapshot and check may send (src/redis/connect.ts READ_ONLY_COMMANDS), and what a connection sends on its own.
const READS = new Set(["ping", "info", "dbsize", "asking", "cluster nodes", "cluster info", "cluster myid", "cluster countkeysinslot", "cluster getkeysinslot", "client list", "config get", "memory usage", "select", "client setname", "client setinfo", "quit"]);
const commandOf = (args: string[]): string => {
  const f = (args[0] ?? "").toLowerCase();
  return ["cluster", "client", "config", "memory", "command"].includes(f) ? `${f} ${(args[1] ?? "").toLowerCase()}` : f;
};

/** Calls of every command on every node (INFO commandstats), "cluster|nodes" written "cluster nodes". */
async function commandCounts(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const a of sb.addrs) {
    const c = await NodeClient.connect(a);
    try {
      for (const m of String(await c.call("info", "commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        const name = m[1]!.replace("|", " ");
        out.set(name, (out.get(name) ?? 0) + Number(m[2]));
      }
    } finally {
      await c.close();
    }
  }
  return out;
}

/** Commands executed anywhere while the read-only commands ran (beyond the counting itself). */
const executed = new Map<string, number>();
async function runReadOnly(args: string[]): Promise<Awaited<ReturnType<typeof runCli>>> {
  const before = await commandCounts();
  const r = await runCli(args);
  const after = await commandCounts();
  for (const [name, n] of after) {
    // The counting connections themselves send INFO (and on connect, PING / CLIENT SETINFO / QUIT);
    // replicas acknowledge replication every second with REPLCONF ACK.
    const d = n - (before.get(name) ?? 0) - (["info", "ping", "quit", "client setinfo", "replconf"].includes(name) ? n : 0);
    if (d > 0) executed.set(name, (executed.get(name) ?? 0) + d);
  }
  return r;
}

describe("read-only commands on a live cluster", () => {
  it("import writes a spec on which plan reports no changes (exit 0 with --detailed-exitcode)", async () => {
    const spec = join(work, "imported.yaml");
    const imp = await runReadOnly(["import", "--seed", sb.addrs[0]!, "--out", spec]);
    expect(imp.code).toBe(0);
    const text = readFileSync(spec, "utf8");
    expect(text).toContain(`master: ${sb.addrs[0]}`);
    const plan = await runReadOnly(["plan", spec, "--detailed-exitcode"]);
    expect(plan.stderr).toBe("");
    expect(plan.stdout).toContain("No changes.");
    expect(plan.code).toBe(0);
  });

  it("plans a fourth shard: 1 meet per new node, 1 replicate, 4096 slot moves, exit 2", async () => {
    const spec = join(work, "scale.yaml");
    writeFileSync(spec, readFileSync(join(work, "imported.yaml"), "utf8"));
    appendFileSync(spec, `  - master: ${sb.addrs[6]}\n    replicas: [${sb.addrs[7]}]\n`);
    const planFile = join(work, "plan.json");
    const r = await runReadOnly(["plan", spec, "--detailed-exitcode", "--out", planFile]);
    expect(r.code).toBe(2);
    const plan = JSON.parse(readFileSync(planFile, "utf8"));
    const count = (k: string) => plan.steps.filter((s: { kind: string }) => s.kind === k).length;
    expect([count("meet"), count("replicate"), count("migrate-slot"), plan.steps.length]).toEqual([2, 1, 4096, 4099]);
    expect(r.stdout).toMatch(/Plan: 2 nodes to add, 0 to remove, 1 replica to change, 4096 slots to move \(~5\.0K keys\)\./);
    // a plan from a snapshot is the same plan
    const snap = join(work, "snap.json");
    expect((await runReadOnly(["snapshot", "--seed", sb.addrs[3]!, "--spec", spec, "--out", snap])).code).toBe(0);
    const offline = await runCli(["plan", spec, "--observed", snap, "--json"]);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout).steps).toEqual(plan.steps);
    expect(JSON.parse(offline.stdout).observed.fingerprint).toBe(plan.observed.fingerprint);
    // markdown and show work from the saved plan
    const md = await runCli(["show", planFile, "--markdown"]);
    expect(md.stdout).toContain("<details><summary>All 4099 steps</summary>");
  });

  it("check reports a healthy cluster and exits 0; --json is machine-readable", async () => {
    const r = await runReadOnly(["check", "--seed", sb.addrs[0]!]);
    expect(r.stdout + r.stderr).not.toContain("[ERR]");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Cluster: 6 nodes \(3 masters, 3 replicas\), slots 16384\/16384, ~20000 keys, cluster_state ok/);
    expect(r.stdout).toContain("[OK]");
    const j = JSON.parse((await runReadOnly(["check", "--seed", sb.addrs[0]!, "--json"])).stdout);
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
      const r = await runReadOnly(["check", "--seed", sb.addrs[0]!]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`slot ${slot}: MIGRATING on ${a!.addr} to ${b!.addr}`);
      // and plan proposes to finish it first
      const p = await runReadOnly(["plan", join(work, "imported.yaml"), "--json"]);
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
      const r = await runReadOnly(["plan", spec]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/127\.0\.0\.1:21107 belongs to another cluster: it knows 0 other node\(s\), none of them a member of this one, and owns 1 slot range\(s\): shardform never resets a node on its own/);
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

  it("MONITOR saw only reads from the connections of plan, import, snapshot and check", () => {
    // Each shardform connection names itself first (CLIENT SETNAME shardform-<command>): commands are told
    // apart by the connection that sent them, so the test's own set-up (SETSLOT, ADDSLOTS ...) is not ours.
    const names = new Map<string, string>();
    for (const l of seen) if (commandOf(l.args) === "client setname") names.set(`${l.node} ${l.source}`, l.args[2] ?? "");
    const ours = seen.filter((l) => (names.get(`${l.node} ${l.source}`) ?? "").startsWith("shardform-"));
    expect(new Set([...names.values()].filter((n) => n.startsWith("shardform-")))).toEqual(new Set(["shardform-import", "shardform-plan", "shardform-snapshot", "shardform-check"]));
    expect(ours.length).toBeGreaterThan(50);
    const sent = new Set(ours.map((l) => commandOf(l.args)));
    expect([...sent].filter((n) => MUTATING.test(n))).toEqual([]);
    expect([...sent].filter((n) => !READS.has(n))).toEqual([]);
    // the test's own connections (unnamed) were seen too: attribution, not the command's name, tells them apart
    expect(seen.some((l) => !names.has(`${l.node} ${l.source}`))).toBe(true);
  });

  it("INFO commandstats counted only reads, admin commands included, while they ran", () => {
    expect(executed.get("cluster nodes") ?? 0).toBeGreaterThan(10);
    expect([...executed.keys()].filter((n) => MUTATING.test(n))).toEqual([]);
    expect([...executed.keys()].filter((n) => !READS.has(n))).toEqual([]);
  });
});
