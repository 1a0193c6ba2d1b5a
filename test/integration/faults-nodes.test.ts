/**
 * Faults on the cluster's own processes while apply moves slots, each ending with the full checks
 * (every key back with its value, views agree, no open slot, no stray key, redis-cli --cluster check
 * clean, plan of the spec reports no changes):
 *  - kill -9 of a source's replica: apply finishes, with a warning naming it; check fails until it is back;
 *  - SIGSTOP of a target master past cluster-node-timeout: Redis fails it over; apply moves the keys
 *    on into the shard's new master, then exits 1 naming the failover (never "complete"); plan fails
 *    it back and finishes;
 *  - a failover of a source (CLUSTER FAILOVER on its replica): apply moves on from the new master,
 *    exits 1 naming it; plan fails it back;
 *  - a scale-in while an untouched replica is down: named in the plan, never "complete"; once the
 *    replica is back, apply of the same spec makes it forget the removed node too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { startNodes, waitConsistent, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { runChild } from "../helpers/child.js";
import { fullChecks } from "../helpers/verify.js";

// Ports 21600-21609 (bus 31600-31609): this file's own range.
const BASE = 21600;
const KEYS = 30_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

function spec(name: string, shards: [number, number[]][]): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}", "${a(1)}", "${a(2)}"]`, `shards:`];
  for (const [m, reps] of shards) lines.push(`  - master: ${a(m)}`, ...(reps.length ? [`    replicas: [${reps.map(a).join(", ")}]`] : []));
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}
const three = (name: string) => spec(name, [[0, [3]], [1, [4]], [2, [5]]]);
const four = (name: string) => spec(name, [[0, [3]], [1, [4]], [2, [5]], [6, [7]]]);

/** After a failover during apply: plan includes failing `node` back, and applying that plan completes. */
async function planFailBackAndApply(f: string, name: string, node: string): Promise<void> {
  const planFile = join(work, `${name}.json`);
  const p = await runCli(["plan", f, "--out", planFile]);
  expect(p.code).toBe(0);
  const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; replica?: { addr: string } }[] };
  expect(plan.steps.some((s) => s.kind === "failover" && s.replica?.addr === node)).toBe(true);
  const ap = await runCli(["apply", planFile]);
  expect(ap.stderr).toContain("Apply complete");
  expect(ap.code).toBe(0);
}

beforeAll(async () => {
  sb = await startNodes(BASE, 10);
  work = mkdtempSync(join(tmpdir(), "shardform-faults-nodes-"));
  expect((await runCli(["apply", three("create"), "--auto-approve"])).code).toBe(0);
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
});
afterAll(async () => {
  await sb?.stop();
});

describe("faults on the cluster's processes during apply", { timeout: 180_000 }, () => {
  it("kill -9 of a source's replica during a scale-out: apply finishes with a warning naming it; check fails on it until it is back", async () => {
    const f = four("dead-replica");
    let killed = false;
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64"], (e) => {
      if (!killed && e.type === "step-done" && e.kind === "migrate-slot") {
        killed = true;
        sb.kill9(BASE + 3);
      }
    });
    expect(killed).toBe(true);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.events.find((e) => e.type === "warning")?.message).toMatch(/^127\.0\.0\.1:21603 is down \(.*\); no step of this plan acts on it/);
    expect(r.events.at(-1)?.type).toBe("done");
    expect((r.events.at(-1) as { timings?: Record<string, number> }).timings).toEqual({ sinceStartMs: expect.any(Number), prepareMs: expect.any(Number), stepsMs: expect.any(Number), verifyMs: expect.any(Number) });
    const c = await runCli(["check", "--seed", a(0)]);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/127\.0\.0\.1:21603 cannot be reached/);
    // The fault outlives the apply: restore the node (it rejoins from its nodes.conf and resyncs), then check everything.
    await sb.restart(BASE + 3);
    await waitConsistent([0, 1, 2, 3, 4, 5, 6, 7].map(a));
    await fullChecks(a(0), 8, KEYS, f);
  });

  it("SIGSTOP of a target master past cluster-node-timeout during a scale-in: apply moves on into the shard's new master, exits 1 naming the failover; plan fails it back and finishes", async () => {
    const f = three("stopped-target");
    let paused = false;
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64", "--wait-timeout", "40"], async (e) => {
      if (!paused && e.type === "step-start" && e.kind === "migrate-slot" && (e as { text?: string }).text?.endsWith(`-> ${a(1)}`)) {
        paused = true;
        sb.pause(BASE + 1);
        await sleep(8000); // cluster-node-timeout is 2 s: the replica takes over meanwhile
        sb.resume(BASE + 1);
      }
    });
    expect(paused).toBe(true);
    expect(r.code).toBe(1);
    expect(r.events.some((e) => e.type === "done")).toBe(false);
    expect(r.events.filter((e) => e.type === "note").map((e) => e.message)).toContain(
      `the cluster failed the target 127.0.0.1:21601 over to its replica 127.0.0.1:21604: slot moves into that shard go on into 127.0.0.1:21604`,
    );
    expect(r.stderr).toMatch(/\(ShardsFailedOverError\): every step ran and every key is served/);
    expect(r.stderr).toContain(`127.0.0.1:21601 is now a replica of 127.0.0.1:21604: the cluster failed that shard over during apply`);
    expect(r.stderr).not.toMatch(/resume with/);
    // plan waits for the views to settle, finishes the open slots, fails 21601 back, and moves the rest
    await planFailBackAndApply(f, "after-stop", a(1));
    await fullChecks(a(0), 6, KEYS, f);
  });

  it("a source failed over during a scale-out (CLUSTER FAILOVER on its replica): apply moves on from its new master, exits 1 naming it; plan fails it back and finishes", async () => {
    const f = four("failed-over-source");
    let done = false;
    // Slowed down so that the failover lands while keys move; the fault is waited for, not assumed.
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "32", "--parallelism", "1", "--max-keys-per-second", "2000"], async (e) => {
      if (!done && e.type === "step-done" && e.kind === "migrate-slot") {
        done = true;
        const c = await NodeClient.connect(a(3));
        try {
          for (let i = 0; i < 100 && !/role:master/.test(String(await c.call("info", "replication"))); i++) {
            if (i % 30 === 0) await c.call("cluster", "failover");
            await sleep(100);
          }
        } finally {
          await c.close();
        }
      }
    });
    expect(done).toBe(true);
    expect(r.code).toBe(1);
    expect(r.events.some((e) => e.type === "done")).toBe(false);
    expect(r.events.filter((e) => e.type === "note").map((e) => e.message)).toContain(
      `the cluster failed the source 127.0.0.1:21600 over to its replica 127.0.0.1:21603: slot moves out of that shard go on from 127.0.0.1:21603`,
    );
    expect(r.stderr).toContain(`127.0.0.1:21600 is now a replica of 127.0.0.1:21603: the cluster failed that shard over during apply`);
    await planFailBackAndApply(f, "after-failover", a(0));
    await fullChecks(a(0), 8, KEYS, f);
  });

  it("SIGSTOP of a target master that has no replica: the cluster is down until it is back; apply waits it out, saying what it waits for, and finishes", async () => {
    const back = await runCli(["apply", three("back-to-three"), "--auto-approve"]);
    expect(back.stderr).toContain("Apply complete");
    const f = spec("lonely-target", [[0, [3]], [1, [4]], [2, [5]], [6, []]]);
    let paused = false;
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "32", "--parallelism", "3"], async (e) => {
      if (!paused && e.type === "step-done" && e.kind === "migrate-slot") {
        paused = true;
        sb.pause(BASE + 6);
        await sleep(5000); // past cluster-node-timeout (2 s): the cluster reports cluster_state:fail meanwhile
        sb.resume(BASE + 6);
      }
    });
    expect(r.stderr).toBe("");
    expect(paused).toBe(true);
    expect(r.code).toBe(0);
    const retries = r.events.filter((e) => e.type === "retry");
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.map((e) => e.cause).join("\n")).toMatch(/CLUSTERDOWN|did not answer|cannot reach 127\.0\.0\.1:21606/);
    expect(r.events.at(-1)?.type).toBe("done");
    await fullChecks(a(0), 7, KEYS, f);
  });

  it("a scale-in while an untouched replica is down: the plan names it, apply does not say 'complete' (the replica would bring the removed node back); once it is back, apply SPEC forgets it there too", async () => {
    const f = three("down-replica-scale-in");
    sb.kill9(BASE + 4);
    const r = await runCli(["apply", f, "--auto-approve"]);
    const blind = `127.0.0.1:21604 is down, so it cannot forget 127.0.0.1:21606, which this plan removes`;
    expect(r.stdout + r.stderr).toContain(`Warning: ${blind}`);
    expect(r.stderr).toMatch(/\(EndStateError\): every step ran, but the cluster is not in the plan's end state/);
    expect(r.stderr).toContain(blind);
    expect(r.stderr).not.toContain("Apply complete");
    expect(r.code).toBe(1);
    // Back with its old nodes.conf, it still lists 21606; apply of the same spec makes it forget it.
    await sb.restart(BASE + 4);
    const again = await runCli(["apply", f, "--auto-approve"]);
    expect(again.stderr).toContain("Apply complete");
    expect(again.code).toBe(0);
    await waitConsistent([0, 1, 2, 3, 4, 5].map(a));
    await fullChecks(a(0), 6, KEYS, f);
  });
});
