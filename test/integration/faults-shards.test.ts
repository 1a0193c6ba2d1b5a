/**
 * A slot move is shard to shard (src/safety/rules.ts, rule 3): when the cluster fails the source or the
 * target over in the middle of a window, the keys keep moving from (into) the master that serves that
 * shard now, no slot is handed over while another master holds keys of it, and apply ends non-zero
 * naming the shards that changed roles. One more `apply SPEC` fails them back. Each case ends with the
 * full checks. The faults are caused on the real processes:
 *  - CLUSTER FAILOVER TAKEOVER on the source's (the target's) replica between two drain passes of a
 *    window (in process, at the migrate:drain-pass failpoint, so it lands mid-window every time);
 *  - SIGSTOP of a source past cluster-node-timeout while apply runs as a child process;
 *  - the same of a scale-in's drained master: its promoted replica drains on, and both are forgotten;
 *  - kill -9 of a source, or of a target, mid-window (then restarted: it rejoins as a replica);
 *  - SIGSTOP of a target that three sources move into: no source may be blocked long enough by its
 *    MIGRATEs to be failed over itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { applyPlan } from "../../src/executor/apply.js";
import { DEFAULT_EXEC_OPTIONS } from "../../src/executor/context.js";
import type { ProgressEvent } from "../../src/executor/progress.js";
import { readPlan } from "../../src/plan/file.js";
import { ShardsFailedOverError } from "../../src/errors.js";
import { startNodes, waitConsistent, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { runChild } from "../helpers/child.js";
import { fullChecks } from "../helpers/verify.js";
import { shardLayout } from "../helpers/shards.js";

// Ports 22700-22709 (bus 32700-32709): this file's own range.
const BASE = 22700;
const KEYS = 30_000;
let sb: TestSandbox;
let work: string;
/** Each master's replica in this file's specs, and the specs (test/helpers/shards.ts). */
const { a, replicaOf, spec } = shardLayout(BASE, () => work);

/** Waits (at most 3 s) until `replica` has acknowledged everything `master` has written (INFO replication). */
async function replicaCaughtUp(master: string, replica: string): Promise<void> {
  const m = await NodeClient.connect(master);
  try {
    const port = replica.split(":")[1];
    for (let i = 0; i < 300; i++) {
      const info = String(await m.call("info", "replication"));
      const offset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
      const acked = Number(new RegExp(`slave\\d+:ip=[^,]+,port=${port},state=online,offset=(\\d+)`).exec(info)?.[1] ?? -2);
      if (acked >= offset) return;
      await sleep(10);
    }
  } finally {
    await m.close();
  }
}

/** CLUSTER FAILOVER TAKEOVER on `replica`, then waits until its old master knows it is a replica. */
async function takeOver(replica: string, master: string): Promise<void> {
  const r = await NodeClient.connect(replica);
  const m = await NodeClient.connect(master);
  try {
    await r.call("cluster", "failover", "takeover");
    for (let i = 0; i < 200 && !/role:slave/.test(String(await m.call("info", "replication"))); i++) await sleep(50);
    expect(String(await m.call("info", "replication"))).toMatch(/role:slave/);
  } finally {
    await r.close();
    await m.close();
  }
}

/**
 * Plans `f` (saved), then applies it in process with one key per MIGRATE (so a window takes several
 * drain passes) and calls `fault(from, to)` once, at the second drain pass of the first window.
 */
async function applyWithFault(f: string, name: string, fault: (from: string, to: string) => Promise<void>): Promise<{ err: unknown; notes: string[] }> {
  const planFile = join(work, `${name}.json`);
  expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
  const notes: string[] = [];
  let current: [string, string] | null = null;
  let passes = 0;
  const emit = (e: ProgressEvent): void => {
    if (e.type === "note") notes.push(e.message);
    if (e.type === "step-start" && e.kind === "migrate-slot" && !current) {
      const m = /(\S+) -> (\S+)$/.exec(e.text);
      if (m) current = [m[1]!, m[2]!];
    }
  };
  const err = await applyPlan(readPlan(planFile), {
    planFile,
    restart: false,
    access: {},
    exec: { ...DEFAULT_EXEC_OPTIONS, pipeline: 1, window: 64, parallelism: 1 },
    emit,
    onContext: (ctx) => {
      ctx.failpointHook = async (point) => {
        if (point !== "migrate:drain-pass" || ++passes !== 2) return;
        await fault(...current!);
      };
    },
  }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(passes).toBeGreaterThanOrEqual(2);
  return { err, notes };
}

/** `apply SPEC` after the cluster failed shards over: it fails them back and completes. */
async function applyFailsBack(f: string): Promise<void> {
  const r = await runCli(["apply", f, "--auto-approve"]);
  expect(r.stdout + r.stderr).toMatch(/failover/);
  expect(r.stderr).toContain("Apply complete");
  expect(r.code).toBe(0);
}

beforeAll(async () => {
  sb = await startNodes(BASE, 8);
  work = mkdtempSync(join(tmpdir(), "shardform-faults-shards-"));
  expect((await runCli(["apply", spec("create", [0, 1, 2]), "--auto-approve"])).code).toBe(0);
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
});
afterAll(async () => {
  await sb?.stop();
});

describe("a stalled node does not take others down", { timeout: 180_000 }, () => {
  it("SIGSTOP of the target of three sources for 8 s (4x cluster-node-timeout): no source is failed over; the moves go on into the target's new master", async () => {
    const f = spec("four-stalled-target", [0, 1, 2, 6]);
    let paused = false;
    let windowsDone = 0;
    // Paused once it owns slots (Redis never fails over a master without slots), while the three pairs move keys into it.
    // Slow enough that the moves outlast the pause even on a loaded machine.
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64", "--max-keys-per-second", "2000"], async (e) => {
      if (e.type === "step-done" && e.kind === "migrate-slot") windowsDone++;
      if (paused || windowsDone === 0 || e.type !== "keys-moved") return;
      paused = true;
      // Known gap (see the README's "Safety"): keys that MIGRATE moved into the target within its
      // replication lag are lost if the cluster promotes its replica before they reach it, as any write
      // acknowledged by a master can be. This case is about the sources, so the target is paused once its
      // replica has caught up with it (a lag of the keys moved in the last moment remains, and is rare).
      await replicaCaughtUp(a(6), a(7));
      sb.pause(BASE + 6);
      await sleep(8000);
      sb.resume(BASE + 6);
    });
    expect(paused).toBe(true);
    // Only the stalled target's shard changed roles: its sources were never blocked long enough to be failed over.
    expect(r.stderr).toMatch(/\(ShardsFailedOverError\): every step ran and every key is served, but the cluster failed 1 shard\(s\) over during apply/);
    // Either the replica took over every slot, or (when it had not heard of the last handover when the
    // cluster promoted it) the shard split in two masters: both are failovers, which apply SPEC undoes.
    expect(r.stderr).toMatch(new RegExp(`${a(6)} is now a replica of ${a(7)}|${a(7)} was promoted in place of ${a(6)} with the slots it knew of`));
    expect(r.code).toBe(1);
    await applyFailsBack(f);
    await fullChecks(a(0), 8, KEYS, f);
  });
});

describe("a slot move is shard to shard", { timeout: 180_000 }, () => {
  it("source failed over mid-window (TAKEOVER between two drain passes): the keys keep moving from its new master; apply names the failover and exits non-zero; apply SPEC fails it back", async () => {
    expect((await runCli(["apply", spec("three-first", [0, 1, 2]), "--auto-approve"])).code).toBe(0);
    const f = spec("four", [0, 1, 2, 6]);
    let source = "";
    const { err, notes } = await applyWithFault(f, "source-takeover", async (from) => {
      source = from;
      await takeOver(replicaOf.get(from)!, from);
    });
    expect(err).toBeInstanceOf(ShardsFailedOverError);
    expect((err as Error).message).toContain(`${source} is now a replica of ${replicaOf.get(source)}: the cluster failed that shard over during apply`);
    expect(notes.join("\n")).toContain(`the cluster failed the source ${source} over to its replica ${replicaOf.get(source)}: slot moves out of that shard go on from ${replicaOf.get(source)}`);
    await applyFailsBack(f);
    await fullChecks(a(0), 8, KEYS, f);
  });

  it("target failed over mid-window (TAKEOVER between two drain passes): the keys keep moving into its new master; no client loops on ASK; apply SPEC fails it back", async () => {
    const f = spec("three", [0, 1, 2]);
    let target = "";
    const { err, notes } = await applyWithFault(f, "target-takeover", async (_from, to) => {
      target = to;
      await takeOver(replicaOf.get(to)!, to);
    });
    expect(err).toBeInstanceOf(ShardsFailedOverError);
    expect((err as Error).message).toContain(`${target} is now a replica of ${replicaOf.get(target)}`);
    expect(notes.join("\n")).toContain(`the cluster failed the target ${target} over to its replica ${replicaOf.get(target)}: slot moves into that shard go on into ${replicaOf.get(target)}`);
    await applyFailsBack(f);
    await fullChecks(a(0), 6, KEYS, f);
  });

  it("SIGSTOP of a source past cluster-node-timeout (its replica is promoted): no key is stranded; apply names the failover, exits 1; apply SPEC fails it back", async () => {
    const f = spec("four-again", [0, 1, 2, 6]);
    let paused = "";
    let source = "";
    let windowsDone = 0;
    // Paused in the middle of the second window: after its first keys moved, before its handover.
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64", "--parallelism", "1", "--max-keys-per-second", "1000"], async (e) => {
      if (e.type === "step-start" && e.kind === "migrate-slot" && !source) source = /(\S+) -> \S+$/.exec(e.message ?? (e as { text?: string }).text ?? "")![1]!;
      if (e.type === "step-done" && e.kind === "migrate-slot") windowsDone++;
      if (paused || windowsDone === 0 || e.type !== "keys-moved") return;
      paused = source;
      const port = Number(source.split(":")[1]);
      sb.pause(port);
      await sleep(6000); // cluster-node-timeout is 2 s: the replica takes over meanwhile
      sb.resume(port);
    });
    expect(paused).not.toBe("");
    expect(r.stderr).toMatch(/\(ShardsFailedOverError\): every step ran and every key is served, but the cluster failed 1 shard\(s\) over during apply/);
    expect(r.stderr).toContain(`${paused} is now a replica of ${replicaOf.get(paused)}`);
    expect(r.code).toBe(1);
    await applyFailsBack(f);
    await fullChecks(a(0), 8, KEYS, f);
  });
});

describe("the walk fails safe", { timeout: 180_000 }, () => {
  it("the checkpoint cannot be written mid-apply (its directory is gone): apply starts nothing new, finishes the windows in flight, exits 1 naming the cause, and leaves no lock or lease behind", async () => {
    const f = spec("three-again", [0, 1, 2]);
    const state = mkdtempSync(join(tmpdir(), "shardform-state-"));
    let removed = false;
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64", "--state-dir", state, "--max-keys-per-second", "5000"], (e) => {
      if (!removed && e.type === "step-done" && e.kind === "migrate-slot") {
        removed = true;
        // Moved away in one step (a recursive remove races with apply writing into the directory: ENOTEMPTY).
        renameSync(state, `${state}.gone`);
      }
    });
    expect(removed).toBe(true);
    expect(r.stderr).toMatch(/\(CheckpointError\): the checkpoint .*three-again\.plan\.checkpoint\.json could not be written \(ENOENT[^)]*\), so apply stopped/);
    expect(r.stderr).not.toMatch(/Internal Error|\n {4}at /);
    expect(r.code).toBe(1);
    // The windows in flight finished: no slot is left open.
    const o = await observeCluster({ seeds: [a(0)] });
    expect(o.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
    // Neither its locks nor its lease outlive it: the next apply runs (and finishes the change).
    const again = await runCli(["apply", f, "--auto-approve"]);
    expect(again.stderr).toContain("Apply complete");
    expect(again.code).toBe(0);
    await fullChecks(a(0), 6, KEYS, f);
  });
});

describe("kill -9 of a node that moves keys", { timeout: 180_000 }, () => {
  /**
   * Scale `f` as a child process and kill -9 the node `which` picks from the window in flight (once
   * the target owns slots, so that the cluster fails it over); then restart it (it comes back as a
   * replica of its promoted replica and resyncs).
   */
  async function killMidMove(f: string, which: (from: string, to: string) => string): Promise<{ killed: string; stderr: string; code: number | null }> {
    let killed = "";
    let current: [string, string] | null = null;
    let windowsDone = 0;
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64", "--parallelism", "1", "--max-keys-per-second", "3000"], async (e) => {
      if (e.type === "step-start" && e.kind === "migrate-slot") current = /(\S+) -> (\S+)$/.exec((e as { text?: string }).text ?? "")!.slice(1, 3) as [string, string];
      if (e.type === "step-done" && e.kind === "migrate-slot") windowsDone++;
      if (killed || windowsDone === 0 || e.type !== "keys-moved" || !current) return;
      killed = which(...current);
      // As in the stalled-target case: killed once its replica has caught up (the known gap of the README's "Safety").
      await replicaCaughtUp(killed, replicaOf.get(killed)!);
      sb.kill9(Number(killed.split(":")[1]));
    });
    expect(killed).not.toBe("");
    await sb.restart(Number(killed.split(":")[1]));
    return { killed, stderr: r.stderr, code: r.code };
  }

  it("kill -9 of a source mid-window: the keys keep moving from its promoted replica (named as failed over, not unreachable); apply exits 1 naming it; apply SPEC fails it back", async () => {
    const back = await runCli(["apply", spec("three-before-kill", [0, 1, 2]), "--auto-approve"]);
    expect(back.code).toBe(0);
    const f = spec("four-killed-source", [0, 1, 2, 6]);
    const r = await killMidMove(f, (from) => from);
    expect(r.stderr).toContain(`${r.killed} is down, and the cluster failed its shard over to ${replicaOf.get(r.killed)} during apply`);
    expect(r.stderr).not.toMatch(/cannot reach/);
    expect(r.code).toBe(1);
    await waitConsistent([0, 1, 2, 3, 4, 5, 6, 7].map(a));
    await applyFailsBack(f);
    await fullChecks(a(0), 8, KEYS, f);
  });

  it("kill -9 of a target mid-window: the keys keep moving into its promoted replica; the source's MIGRATING is turned toward it; apply exits 1 naming it; apply SPEC fails it back", async () => {
    const f = spec("three-killed-target", [0, 1, 2]);
    const r = await killMidMove(f, (_from, to) => to);
    expect(r.stderr).toContain(`${r.killed} is down, and the cluster failed its shard over to ${replicaOf.get(r.killed)} during apply`);
    // A scale-in: the killed target, down at the end, still lists the removed nodes (safety rule 5).
    expect(r.stderr).toContain(`${r.killed} is down, so it cannot forget`);
    expect(r.stderr).not.toMatch(/ResumeMismatchError|cannot reach/);
    expect(r.code).toBe(1);
    // Back, it still lists the removed nodes: apply of the spec fails its shard back and makes it forget them.
    await applyFailsBack(f);
    await fullChecks(a(0), 6, KEYS, f);
  });
});

describe("a removed shard fails over while it drains", { timeout: 180_000 }, () => {
  it("a scale-in whose drained master is stopped past cluster-node-timeout mid-drain: its promoted replica drains on, and the removed shard's two nodes are forgotten in the order their new roles need", async () => {
    // Four shards again (the fourth was removed by the tests before), then a scale-in.
    expect((await runCli(["apply", spec("four-before-drain", [0, 1, 2, 6]), "--auto-approve"])).code).toBe(0);
    const f = spec("three-drained-stopped", [0, 1, 2]);
    let paused = false;
    let windowsDone = 0;
    const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "64", "--parallelism", "1", "--max-keys-per-second", "2000"], async (e) => {
      if (e.type === "step-done" && e.kind === "migrate-slot") windowsDone++;
      if (paused || windowsDone === 0 || e.type !== "keys-moved") return;
      paused = true;
      await replicaCaughtUp(a(6), a(7));
      sb.pause(BASE + 6);
      await sleep(6000); // cluster-node-timeout is 2 s: a(7) takes over meanwhile
      sb.resume(BASE + 6);
    });
    expect(paused).toBe(true);
    // The replica took over and drained on; both nodes of the removed shard are gone, nothing to fail back.
    expect(r.events.some((e) => e.type === "note" && (e.message ?? "").includes(`the cluster failed the source ${a(6)} over to its replica ${a(7)}`))).toBe(true);
    expect(r.stderr).not.toMatch(/refusing to forget/);
    expect(r.code).toBe(0);
    await fullChecks(a(0), 6, KEYS, f);
  });
});
