/**
 * The scale tier at 200 nodes (not part of `npm test`; `npm run test:scale` runs it after the 60-node
 * file). 202 bare redis-server processes:
 *
 * 1. redis/redis#4941 (where redis-trib ended uneven and looped): 200 masters, one of which owns every
 *    slot and all 200,000 keys (made by hand: ADDSLOTSRANGE on one, MEET of the others). The spec of
 *    the 200 masters plans and applies evenly: every master ends with 81 or 82 slots.
 * 2. The processes are made bare again (FLUSHALL, CLUSTER RESET HARD); shardform creates 100 shards
 *    with a replica each, every master with a config epoch of its own, and 200,000 keys are written.
 * 3. Scale out by one shard (the 2 spare processes), then in by one (the first shard).
 *
 * Each apply ends with the full checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { countSlots } from "../../src/slots.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { fullChecks } from "../helpers/verify.js";
import { withNode } from "../helpers/node.js";

// Ports 20200-20401 (bus 30200-30401): this file's own range, below the kernel's outgoing range.
const BASE = 20_200;
const NODES = 202;
const KEYS = 200_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

/** apply of `args`, its output kept in the work directory (a failing check names the file). */
async function apply(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCli(["apply", ...args, "--auto-approve"]);
  writeFileSync(join(work, `${name}.apply.log`), `${r.stdout}\n${r.stderr}`);
  return r;
}

function writeSpec(name: string, shards: { master: number; replica?: number }[]): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(shards[0]!.master)}"]`, `shards:`];
  for (const s of shards) lines.push(`  - master: ${a(s.master)}`, ...(s.replica === undefined ? [] : [`    replicas: [${a(s.replica)}]`]));
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

/** Shards i = from .. to-1 of the paired layout: master node 2i, replica node 2i+1. */
const paired = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => ({ master: 2 * (from + k), replica: 2 * (from + k) + 1 }));

async function mastersSlots(seed: string): Promise<number[]> {
  const o = await observeCluster({ seeds: [seed] });
  return o.nodes.filter((n) => n.role === "master").map((n) => countSlots(n.slots));
}

beforeAll(async () => {
  // Redis's default cluster-node-timeout (15 s): every node pings each of the others at least every
  // half of it, and 202 nodes gossiping at 5 s saturate this 2-core machine (load average 75).
  sb = await startNodes(BASE, NODES, undefined, { nodeTimeoutMs: 15_000 });
  work = mkdtempSync(join(tmpdir(), "shardform-scale-200-"));
});
afterAll(async () => {
  await sb?.stop();
});

describe("200 nodes", { timeout: 1_800_000 }, () => {
  it("200 masters where one owns every slot (redis/redis#4941): planned and applied evenly", async () => {
    const masters = Array.from({ length: 200 }, (_, i) => i);
    await withNode(a(0), (c) => c.call("cluster", "addslotsrange", 0, 16383));
    await withNode(a(0), (c) => c.pipeline(masters.slice(1).map((i) => ["cluster", "meet", "127.0.0.1", BASE + i])));
    // Until every node knows all 200 (gossip) and the cluster is up.
    for (let t = 0; ; t++) {
      const o = await observeCluster({ seeds: [a(0)] });
      if (o.nodes.length === 200 && o.disagreements.length === 0 && o.nodes.every((n) => n.clusterState === "ok")) break;
      if (t > 600) throw new Error(`the hand-made cluster did not settle: ${o.nodes.length} members, ${o.disagreements.slice(0, 3).join("; ")}`);
      await sleep(200);
    }
    await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
    const spec = writeSpec("uneven", masters.map((m) => ({ master: m })));
    const planFile = join(work, "even.json");
    const p = await runCli(["plan", spec, "--out", planFile]);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/1630[23] slots to move/);
    const r = await apply("even", [planFile]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    const slots = await mastersSlots(a(0));
    expect(slots).toHaveLength(200);
    expect(Math.min(...slots)).toBeGreaterThanOrEqual(81);
    expect(Math.max(...slots)).toBeLessThanOrEqual(82);
    await fullChecks(a(0), 200, KEYS, spec);
  });

  it("creates 100 shards with a replica each from bare processes", async () => {
    // Bare again: the test's own reset, node by node.
    await Promise.all(
      Array.from({ length: NODES }, (_, i) =>
        withNode(a(i), async (c) => {
          await c.call("flushall");
          await c.call("cluster", "reset", "hard");
        }),
      ),
    );
    const s = writeSpec("create", paired(0, 100));
    const r = await apply("create", [s]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    // Every master has a config epoch of its own as soon as apply ends: none is left for gossip to settle
    // (while it does, a master bumped above a slot's new owner takes the slot back and its keys are lost).
    const epochs = (await observeCluster({ seeds: [a(0)] })).nodes.filter((n) => n.role === "master").map((n) => n.configEpoch);
    expect(new Set(epochs).size).toBe(100);
    await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
    await fullChecks(a(0), 200, KEYS, s);
  });

  it("scales out by one shard (with its replica), every key kept", async () => {
    const s = writeSpec("out", paired(0, 101));
    const r = await apply("out", [s]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await fullChecks(a(0), 202, KEYS, s);
  });

  it("scales in by one shard: the first one is drained and its two nodes forgotten", async () => {
    const s = writeSpec("in", paired(1, 101));
    const r = await apply("in", [s]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await fullChecks(a(2), 200, KEYS, s);
  });
});
