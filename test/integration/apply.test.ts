/**
 * apply, end to end on a real cluster holding 100,000 keys: create from bare nodes, scale out with a
 * live client (under --max-latency-ms), move a replica, fail over, scale in; each followed by the full checks. Then the
 * refusals: a stale plan, an edited plan, and no confirmation without a terminal.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "ioredis";
import { observeCluster } from "../../src/observe/observe.js";
import { fingerprint } from "../../src/observe/fingerprint.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { runChild } from "../helpers/child.js";
import { expectAllKeys, expectHealthy } from "../helpers/verify.js";

// Ports 21200-21209 (bus 31200-31209): this file's own range.
const BASE = 21200;
const KEYS = 100_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

function specFile(name: string, shards: { master: number; replicas?: number[]; weight?: number; slots?: string[] }[]): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}", "${a(3)}"]`, `shards:`];
  for (const s of shards) {
    lines.push(`  - master: ${a(s.master)}`);
    if (s.replicas?.length) lines.push(`    replicas: [${s.replicas.map(a).join(", ")}]`);
    if (s.weight !== undefined) lines.push(`    weight: ${s.weight}`);
    if (s.slots) lines.push(`    slots: [${s.slots.map((r) => `"${r}"`).join(", ")}]`);
  }
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

async function planAndApply(spec: string, applyArgs: string[] = []): Promise<{ plan: { steps: { kind: string }[] }; out: string }> {
  const planFile = spec.replace(/\.yaml$/, ".plan.json");
  const p = await runCli(["plan", spec, "--out", planFile, "--detailed-exitcode"]);
  expect(p.stderr).toBe("");
  expect(p.code).toBe(2);
  const r = await runCli(["apply", planFile, ...applyArgs]);
  expect(r.stderr).toContain("Apply complete");
  // where the time went, on the last line
  expect(r.stderr.trimEnd().split("\n").at(-1)).toMatch(/^Time: before apply [\d.]+ s \(start, observe, plan\), prepare [\d.]+ s .*, steps [\d.]+ s, verify [\d.]+ s .*; [\d.]+ s since the process started\.$/);
  expect(r.code).toBe(0);
  // afterwards the spec is reached: plan reports no changes
  const again = await runCli(["plan", spec, "--detailed-exitcode"]);
  expect(again.stdout + again.stderr).toContain("No changes.");
  expect(again.code).toBe(0);
  return { plan: JSON.parse(readFileSync(planFile, "utf8")), out: r.stderr };
}

beforeAll(async () => {
  sb = await startNodes(BASE, 10);
  work = mkdtempSync(join(tmpdir(), "shardform-apply-"));
});
afterAll(async () => {
  await sb?.stop();
});

describe("apply on a real cluster", () => {
  it("creates a 3-shard cluster from bare nodes", async () => {
    const spec = specFile("create", [
      { master: 0, replicas: [3] },
      { master: 1, replicas: [4] },
      { master: 2, replicas: [5] },
    ]);
    const { plan } = await planAndApply(spec);
    expect(plan.steps.filter((s) => s.kind === "add-slots")).toHaveLength(3);
    await expectHealthy(a(0), 6);
    await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
    await expectAllKeys(a(0), KEYS);
  });

  it("scales out to 4 shards while a client reads and writes through a cluster client, losing nothing", async () => {
    const client = new Cluster([{ host: "127.0.0.1", port: BASE }], { scaleReads: "master" });
    const written = new Map<string, string>();
    const failures: string[] = [];
    let running = true;
    const traffic = (async () => {
      // Goes on after apply until every one of the 5000 keys was written once: the apply may finish first.
      for (let i = 0; running || i < 5000; i++) {
        const k = `live:${i % 5000}`;
        const v = `v${i}`;
        try {
          await client.set(k, v);
          written.set(k, v);
          const back = await client.get(`key:${String((i * 7919) % KEYS).padStart(10, "0")}`);
          if (back === null) failures.push(`read of a test key returned nothing at i=${i}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    })();
    try {
      const spec = specFile("scale-out", [
        { master: 0, replicas: [3] },
        { master: 1, replicas: [4] },
        { master: 2, replicas: [5] },
        { master: 6, replicas: [7] },
      ]);
      // Under a latency budget: apply PINGs the moving nodes and paces the moves by what they wait.
      const { plan, out } = await planAndApply(spec, ["--max-latency-ms", "5"]);
      expect(plan.steps.filter((s) => s.kind === "migrate-slot")).toHaveLength(4096);
      expect(out).toContain("paced so that a command on a moving node waits at most 5 ms (99th percentile)");
      expect(out).toMatch(/^Latency: budget 5 ms; a PING on the moving nodes waited [\d.]+ ms at the 99th percentile \(max [\d.]+ ms, \d+ PINGs.*\); the pace went up to \d+ keys\/s\.$/m);
    } finally {
      running = false;
      await traffic;
    }
    expect(failures).toEqual([]);
    expect(written.size).toBe(5000);
    for (const [k, v] of written) expect(await client.get(k)).toBe(v);
    client.disconnect();
    await expectHealthy(a(0), 8);
    await expectAllKeys(a(0), KEYS);
  });

  it("moves a replica to another master", async () => {
    const spec = specFile("move-replica", [
      { master: 0, replicas: [3, 7] },
      { master: 1, replicas: [4] },
      { master: 2, replicas: [5] },
      { master: 6 },
    ]);
    const { plan } = await planAndApply(spec);
    expect(plan.steps.map((s) => s.kind)).toEqual(["replicate"]);
    await expectHealthy(a(0), 8);
  });

  it("fails over: a replica becomes its shard's master", async () => {
    const spec = specFile("failover", [
      { master: 3, replicas: [0, 7] },
      { master: 1, replicas: [4] },
      { master: 2, replicas: [5] },
      { master: 6 },
    ]);
    const { plan } = await planAndApply(spec);
    expect(plan.steps.map((s) => s.kind)).toEqual(["failover"]);
    await expectHealthy(a(0), 8);
    await expectAllKeys(a(0), KEYS);
  });

  it("scales in: drains a shard, then no member lists the removed nodes, which are reset", async () => {
    const spec = specFile("scale-in", [
      { master: 3, replicas: [0, 7] },
      { master: 1, replicas: [4] },
      { master: 6 },
    ]);
    const { plan } = await planAndApply(spec);
    expect(plan.steps.filter((s) => s.kind === "forget-node")).toHaveLength(2);
    const o = await expectHealthy(a(0), 6);
    const addrs = o.nodes.map((n) => n.addr);
    expect(addrs).not.toContain(a(2));
    expect(addrs).not.toContain(a(5));
    for (const n of o.nodes) expect((n.view ?? []).map((v) => v.addr)).not.toContain(a(2));
    for (const gone of [a(2), a(5)]) {
      const c = await NodeClient.connect(gone);
      expect(String(await c.call("cluster", "nodes")).trim().split("\n")).toHaveLength(1);
      await c.close();
    }
    await expectAllKeys(a(0), KEYS);
  });

  it("finishes a slot move left open by an interrupted run, with keys on both sides", async () => {
    const o = await observeCluster({ seeds: [a(0)] });
    const src = o.nodes.find((n) => n.addr === a(1))!;
    const dst = o.nodes.find((n) => n.addr === a(6))!;
    const slot = src.slots[0]![0];
    const cs = await NodeClient.connect(src.addr);
    const cd = await NodeClient.connect(dst.addr);
    await cd.call("cluster", "setslot", slot, "importing", src.id);
    await cs.call("cluster", "setslot", slot, "migrating", dst.id);
    const keys = (await cs.call("cluster", "getkeysinslot", slot, 3)) as string[];
    expect(keys.length).toBeGreaterThan(0);
    await cs.call("migrate", "127.0.0.1", BASE + 6, "", 0, 5000, "keys", ...keys);
    await cs.close();
    await cd.close();
    const spec = join(work, "scale-in.yaml");
    const planFile = join(work, "open.plan.json");
    expect((await runCli(["plan", spec, "--out", planFile])).code).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, "utf8"));
    expect(plan.steps[0]).toMatchObject({ kind: "migrate-slot", slot, from: { addr: a(1) }, to: { addr: a(6) } });
    const r = await runCli(["apply", planFile]);
    expect(r.code).toBe(0);
    await expectHealthy(a(0), 6);
    await expectAllKeys(a(0), KEYS);
  });

  it("on BUSYKEY in a MIGRATING slot, the source's copy (the one clients read) replaces the target's, identical or not (safety rule 8)", async () => {
    const o = await observeCluster({ seeds: [a(0)] });
    const src = o.nodes.find((n) => n.addr === a(1))!;
    const dst = o.nodes.find((n) => n.addr === a(6))!;
    const cs = await NodeClient.connect(src.addr);
    const cd = await NodeClient.connect(dst.addr);
    let slot = src.slots[0]![0];
    while (Number(await cs.call("cluster", "countkeysinslot", slot)) < 2) slot++;
    await cd.call("cluster", "setslot", slot, "importing", src.id);
    await cs.call("cluster", "setslot", slot, "migrating", dst.id);
    const [same, differ] = (await cs.call("cluster", "getkeysinslot", slot, 2)) as string[];
    // Copies on the target: one as a crash after RESTORE and before DEL leaves it, one older, as the
    // RESTORE of a MIGRATE that timed out leaves it when a paused target runs it after the source gave up.
    await cd.pipeline([["asking"], ["set", same!, String(await cs.call("get", same!))]]);
    await cd.pipeline([["asking"], ["set", differ!, "an-older-copy"]]);
    await cs.close();
    await cd.close();
    const spec = join(work, "scale-in.yaml");
    const planFile = join(work, "busy.plan.json");
    expect((await runCli(["plan", spec, "--out", planFile])).code).toBe(0);
    const r = await runCli(["apply", planFile]);
    expect(r.stderr).toContain(`slot ${slot}: 1 key(s) were on both ${a(1)} and ${a(6)} with different values; the copy on ${a(1)}, which clients were served while the slot was MIGRATING, replaces the older one`);
    expect(r.code).toBe(0);
    await expectHealthy(a(0), 6);
    // every test key has the source's value, the one that differed too
    await expectAllKeys(a(0), KEYS);
  });

  it("applies weights and pinned slots", async () => {
    const f = specFile("weights", [
      { master: 3, replicas: [0, 7], slots: ["0-999"] },
      { master: 1, replicas: [4], weight: 2 },
      { master: 6, weight: 1 },
    ]);
    await planAndApply(f);
    const o = await expectHealthy(a(0), 6);
    const count = (addr: string) => o.nodes.find((n) => n.addr === addr)!.slots.reduce((s, [x, y]) => s + y - x + 1, 0);
    expect([count(a(3)), count(a(1)), count(a(6))]).toEqual([1000, 10256, 5128]);
    expect(o.nodes.find((n) => n.addr === a(3))!.slots).toEqual([[0, 999]]);
    await expectAllKeys(a(0), KEYS);
  });

  it("resets a node of another live cluster only because the spec allows it, HARD (a new node id, so the two clusters never merge), then adds it", async () => {
    // a(8) and a(9) form another cluster, a(8) holding a key: a(8) "belongs to another cluster"
    const c = await NodeClient.connect(a(8));
    await c.call("cluster", "addslotsrange", 0, 16383);
    await c.call("cluster", "meet", "127.0.0.1", BASE + 9);
    const other = await NodeClient.connect(a(9));
    const otherId = String(await other.call("cluster", "myid"));
    const oldId = String(await c.call("cluster", "myid"));
    for (let i = 0; i < 100 && !String(await other.call("cluster", "nodes")).includes(oldId); i++) await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; ; i++) {
      try {
        await c.call("set", "stray", "x");
        break;
      } catch (err) {
        if (i > 100 || !/CLUSTERDOWN/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await c.close();
    const f = join(work, "reset.yaml");
    const body = (extra: string) =>
      [
        `cluster: { seeds: ["${a(0)}"]${extra} }`,
        `shards:`,
        `  - { master: ${a(3)}, replicas: [${a(0)}, ${a(7)}], slots: ["0-999"] }`,
        `  - { master: ${a(1)}, replicas: [${a(4)}], weight: 2 }`,
        `  - { master: ${a(6)}, replicas: [${a(8)}], weight: 1 }`,
      ].join("\n") + "\n";
    writeFileSync(f, body(""));
    const refused = await runCli(["plan", f]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/never resets a node on its own/);
    writeFileSync(f, body(`, allowReset: ["${a(8)}"]`));
    const shown = await runCli(["plan", f]);
    expect(shown.stdout).toMatch(/-\/\+ reset-node 127\.0\.0\.1:21208 .*CLUSTER RESET HARD \(a new node id\), wiping 1 key\(s\).*\(destructive\)/);
    const { plan, out } = await planAndApply(f);
    expect(plan.steps.map((s) => s.kind)).toEqual(["reset-node", "meet", "replicate"]);
    expect(out).toContain(`127.0.0.1:21208 was reset: it is now node`);
    const o = await expectHealthy(a(0), 7);
    const joined = o.nodes.find((n) => n.addr === a(8))!;
    expect(joined.id).not.toBe(oldId);
    expect(joined.role).toBe("replica");
    // Give gossip time to act: the other cluster learns none of this cluster's nodes, and no member learns a(9).
    await new Promise((r) => setTimeout(r, 3000));
    const otherView = String(await other.call("cluster", "nodes"));
    for (const n of o.nodes) expect(otherView).not.toContain(n.id);
    for (const n of o.nodes) {
      const m = await NodeClient.connect(n.addr);
      expect(String(await m.call("cluster", "nodes"))).not.toContain(otherId);
      await m.close();
    }
    await other.close();
    await expectHealthy(a(0), 7);
    await expectAllKeys(a(0), KEYS);
  });

  it("replaces a master by a new node in one edit: the node joins as its replica, syncs and takes over, the old master is forgotten; no key moves, even when the shard's replica is slow to follow the new master", async () => {
    // a(1) (weight 2, replica a(4)) is replaced by a(2), removed and reset by the scale-in above.
    const f = specFile("replace", [
      { master: 3, replicas: [0, 7], slots: ["0-999"] },
      { master: 2, replicas: [4], weight: 2 },
      { master: 6, replicas: [8], weight: 1 },
    ]);
    const before = await observeCluster({ seeds: [a(0)] });
    const oldSlots = before.nodes.find((n) => n.addr === a(1))!.slots;
    const planFile = join(work, "replace.plan.json");
    expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string }[] };
    expect(plan.steps.map((s) => s.kind)).toEqual(["meet", "replicate", "failover", "forget-node"]);
    // The shard's replica a(4) is stopped from a(2)'s takeover until 2 s into the removal of a(1), so it
    // cannot follow a(2) by itself in time: the removal waits for it (and tells it), instead of refusing
    // to forget a node that still has a replica.
    let paused = false;
    const r = await runChild(["apply", planFile, "--auto-approve", "--json-log"], (e) => {
      if (e.type === "step-start" && e.kind === "failover" && !paused) {
        paused = true;
        sb.pause(BASE + 4);
      }
      if (e.type === "step-start" && e.kind === "forget-node") setTimeout(() => sb.resume(BASE + 4), 2000);
    });
    expect(paused).toBe(true);
    expect(r.stderr).not.toMatch(/still replicate/);
    expect(r.code).toBe(0);
    expect(r.events.find((e) => e.type === "done")).toMatchObject({ keysMoved: 0 });
    const o = await expectHealthy(a(0), 7);
    expect(o.nodes.find((n) => n.addr === a(2))!.slots).toEqual(oldSlots);
    expect(o.nodes.find((n) => n.addr === a(4))!.masterId).toBe(o.nodes.find((n) => n.addr === a(2))!.id);
    expect(o.nodes.some((n) => n.addr === a(1))).toBe(false);
    await expectAllKeys(a(0), KEYS);
    const again = await runCli(["plan", f, "--detailed-exitcode"]);
    expect(again.stdout + again.stderr).toContain("No changes.");
  });

  it("refuses a stale plan and changes nothing", async () => {
    const spec = specFile("stale", [
      { master: 3, replicas: [0, 7] },
      { master: 1, replicas: [4] },
      { master: 6, replicas: [8, 2] },
    ]);
    const planFile = join(work, "stale.plan.json");
    expect((await runCli(["plan", spec, "--out", planFile])).code).toBe(0);
    // the world changes: a replica moves behind the plan's back
    const c = await NodeClient.connect(a(7));
    const o = await observeCluster({ seeds: [a(0)] });
    await c.call("cluster", "replicate", o.nodes.find((n) => n.addr === a(6))!.id);
    await c.close();
    for (let i = 0; i < 100 && (await observeCluster({ seeds: [a(0)] })).disagreements.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    const before = fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(2)] }));
    const r = await runCli(["apply", planFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Saved plan is stale.*127\.0\.0\.1:21207 was a replica of 127\.0\.0\.1:\d+, now a replica of 127\.0\.0\.1:21206/s);
    // no checkpoint of this plan has work to resume: no "resume with" advice, and a usage error has none either
    expect(r.stderr).not.toMatch(/resume with/i);
    // Scripts read the error's stable code from the JSON log.
    const j = await runCli(["apply", planFile, "--json-log"]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout.trim().split("\n").at(-1)!)).toMatchObject({ type: "error", code: "STALE_PLAN", error: "StalePlanError" });
    const usage = await runCli(["apply", planFile, "--pipeline", "0"]);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/--pipeline must be a whole number >= 1, got "0"/);
    expect(usage.stderr).not.toMatch(/resume with/i);
    expect(fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(2)] }))).toBe(before);
  });

  it("refuses a plan file edited by hand, and a spec without confirmation when there is no terminal", async () => {
    const spec = specFile("edited", [
      { master: 3, replicas: [0] },
      { master: 1, replicas: [4] },
      { master: 6, replicas: [7, 8, 2] },
    ]);
    const planFile = join(work, "edited.plan.json");
    const made = await runCli(["plan", spec, "--out", planFile]);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const before = fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(2)] }));
    // a reviewer "fixes" an address in the plan by hand
    writeFileSync(planFile, readFileSync(planFile, "utf8").replaceAll(`"${a(2)}"`, `"${a(9)}"`));
    const r = await runCli(["apply", planFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/was changed after it was written/);
    const s = await runCli(["apply", spec]);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/stdin is not a terminal.*--auto-approve/);
    expect(fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(2)] }))).toBe(before);
  });

  it("the live progress line fits an 80-column terminal (a real pseudo-terminal, made by script)", async () => {
    // Import the cluster as it is, then give one shard twice the weight: a rebalance of thousands of slots.
    const imported = join(work, "tty-base.yaml");
    writeFileSync(imported, (await runCli(["import", "--seed", a(0)])).stdout);
    const text = readFileSync(imported, "utf8");
    const f = join(work, "tty.yaml");
    writeFileSync(f, text.replace(/^( {2}- master: .*)$/m, "$1\n    weight: 2").replace(/^ {4}slots:.*(\n {6}- .*)*$/gm, ""));
    const planFile = join(work, "tty.plan.json");
    expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
    const r = spawnSync("script", ["-qec", `stty cols 80 rows 24; ${process.execPath} bin/shardform.js apply ${planFile} --window 16 --parallelism 1`, "/dev/null"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const screen = r.stdout.replace(new RegExp(String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]", "g"), "");
    const drawn = screen.split(/[\r\n]+/).filter((l) => /^\[[#.]{20}\]/.test(l));
    expect(drawn.length).toBeGreaterThan(3);
    for (const l of drawn) expect(l.length).toBeLessThan(80);
    expect(screen).toContain("Apply complete");
    await expectHealthy(a(0), 7);
    await expectAllKeys(a(0), KEYS);
    const again = await runCli(["plan", f, "--detailed-exitcode"]);
    expect(again.stdout).toContain("No changes.");
  });
});
