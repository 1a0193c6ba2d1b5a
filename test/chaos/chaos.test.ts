/**
 * The chaos tier (`npm run test:chaos`; not part of `npm test`). One cluster of real redis-server
 * processes (ports 18000-18007, bus 28000-28007) scales out to four shards and back in to three, round
 * after round, while live clients write all the time (see traffic.ts) and a fault is caused in the
 * middle of each apply (each fault in turn, on a scale-out and then on a scale-in):
 *  - none;
 *  - kill -9 of apply (then the same command resumes it);
 *  - SIGSTOP of a source, or of a target, past cluster-node-timeout (the cluster fails it over);
 *  - kill -9 of a replica of a source or target (restarted a few seconds later);
 *  - CLUSTER FAILOVER by hand on a replica of a source or target.
 * After each round the cluster is brought back to the spec with `apply SPEC` (which fails shards back),
 * and everything is read back. The table counts, per fault:
 *  - acknowledged writes lost (rounds in which the cluster failed a shard over apart, including a shard
 *    the spec removes, which apply notes as it drains on from the promoted replica: Redis replicates
 *    asynchronously, so a failover may lose the last writes a master acknowledged);
 *  - keys stranded (held by a node that does not own their slot, so no client reads them);
 *  - false successes (apply exited 0, but the cluster is not the spec's, or keys are stranded);
 *  - resumes refused (a killed apply that the same command could not resume).
 * CHAOS_SEED replays a run (the seed is printed), CHAOS_ROUNDS sets the number of rounds (24: each
 * fault on two scale-outs and two scale-ins), and CHAOS_REPORT names a file for the table (Markdown).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate, verifyTestKeys } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { startNodes, waitConsistent, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { runChild, type ChildResult } from "../helpers/child.js";
import { Traffic, type Losses } from "./traffic.js";

const BASE = 18000;
const NODE_TIMEOUT_MS = 2000;
const BASE_KEYS = 20_000;
const ROUNDS = Number(process.env["CHAOS_ROUNDS"] ?? 24);
const SEED = Number(process.env["CHAOS_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
const FAULTS = ["none", "kill-apply", "stop-source", "stop-target", "kill-replica", "failover"] as const;
type Fault = (typeof FAULTS)[number];

const a = (i: number): string => `127.0.0.1:${BASE + i}`;
const port = (addr: string): number => Number(addr.split(":")[1]);
let sb: TestSandbox;
let work: string;
let traffic: Traffic;

/** mulberry32: a small seeded generator, so that a seed replays the same faults at the same points. */
function rng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let x = Math.imul(t ^ (t >>> 15), 1 | t);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
/** Progress and the table go to stdout as they come (vitest shows a test's output). */
const say = (text: string): void => void process.stdout.write(text + "\n");

function specFile(name: string, masters: number[]): string {
  const f = join(work, `${name}.yaml`);
  // 18006 and 18007 are spare capacity, added and removed round after round: one that was down when it
  // was removed still remembers the cluster, and the operator allows it to be wiped when it is re-added.
  const lines = [`cluster:`, `  seeds: ["${a(0)}", "${a(1)}", "${a(2)}"]`, ...(masters.includes(6) ? [`  allowReset: ["${a(6)}", "${a(7)}"]`] : []), `shards:`];
  for (const m of masters) lines.push(`  - master: ${a(m)}`, `    replicas: [${a(m === 6 ? 7 : m + 3)}]`);
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

interface Row {
  rounds: number;
  landed: number;
  failoverRounds: number;
  acked: number;
  lostQuiet: number;
  lostFailover: number;
  stranded: number;
  falseSuccesses: number;
  resumesRefused: number;
}
const rows = new Map<Fault, Row>(FAULTS.map((f) => [f, { rounds: 0, landed: 0, failoverRounds: 0, acked: 0, lostQuiet: 0, lostFailover: 0, stranded: 0, falseSuccesses: 0, resumesRefused: 0 }]));
const problems: string[] = [];

/** Writes lost since `before`: SETs and RPUSHes not missing then, and any growth of the INCR deficit. */
const newLosses = (now: Losses, before: Losses): number =>
  [...now.set].filter((n) => !before.set.has(n)).length + [...now.rpush].filter((n) => !before.rpush.has(n)).length + Math.max(0, now.incr - before.incr);

/** Keys held by a node that does not own their slot, and slots left open, as every member reports them. */
async function strandedNow(): Promise<{ stray: number; open: number }> {
  const o = await observeCluster({ seeds: [a(0), a(1), a(2)] });
  return {
    stray: o.nodes.flatMap((n) => n.strayKeys ?? []).reduce((s, x) => s + x.keys, 0),
    open: o.nodes.reduce((s, n) => s + n.migrating.length + n.importing.length, 0),
  };
}

/** After an apply that exited 0: the cluster must be the spec's, with nothing stranded or open. */
async function judgeSuccess(spec: string, what: string): Promise<boolean> {
  const s = await strandedNow();
  const p = await runCli(["plan", spec, "--detailed-exitcode"]);
  const wrong = [s.stray > 0 ? `${s.stray} stranded key(s)` : "", s.open > 0 ? `${s.open} open slot(s)` : "", p.code !== 0 ? `plan of the spec is not empty (exit ${p.code})` : ""].filter(Boolean);
  if (wrong.length === 0) return true;
  problems.push(`${what} exited 0, but: ${wrong.join(", ")}\n${p.stdout.slice(0, 2000)}`);
  return false;
}

/** The address of a replica of `master` (from its INFO replication), if it has one. */
async function replicaOf(master: string): Promise<string | null> {
  const c = await NodeClient.connect(master);
  try {
    const info = String(await c.call("info", "replication"));
    const m = /slave0:ip=([^,]+),port=(\d+)/.exec(info);
    return m ? `${m[1]}:${m[2]}` : null;
  } finally {
    await c.close();
  }
}

/** Causes `fault` on the pair (from, to) whose keys are moving; the apply child runs on meanwhile. */
async function inject(fault: Fault, from: string, to: string, child: { kill: (s: NodeJS.Signals) => void }): Promise<string> {
  const end = random() < 0.5 ? from : to;
  switch (fault) {
    case "none":
      return "nothing";
    case "kill-apply":
      child.kill("SIGKILL");
      return "kill -9 of apply";
    case "stop-source":
    case "stop-target": {
      const node = fault === "stop-source" ? from : to;
      const ms = Math.round(NODE_TIMEOUT_MS * (2.5 + random() * 1.5));
      sb.pause(port(node));
      await sleep(ms);
      sb.resume(port(node));
      return `SIGSTOP of ${node} for ${ms} ms`;
    }
    case "kill-replica": {
      const r = await replicaOf(end);
      if (!r) throw new Error(`no replica of ${end} to kill`);
      sb.kill9(port(r));
      await sleep(1000 + random() * 3000);
      await sb.restart(port(r));
      return `kill -9 of ${r} (replica of ${end}), restarted`;
    }
    case "failover": {
      const r = await replicaOf(end);
      if (!r) throw new Error(`no replica of ${end} to fail over to`);
      const c = await NodeClient.connect(r);
      try {
        await c.call("cluster", "failover");
        return `CLUSTER FAILOVER on ${r} (replica of ${end})`;
      } catch (err) {
        // A replica that still flags its master as failed (it was restarted a moment ago) refuses a plain
        // failover: an operator then forces it.
        if (!/FORCE/.test((err as Error).message)) throw err;
        await c.call("cluster", "failover", "force");
        return `CLUSTER FAILOVER FORCE on ${r} (replica of ${end}: a plain one was refused, ${(err as Error).message})`;
      } finally {
        await c.close();
      }
    }
  }
}

const failedOverShards = (stderr: string): boolean => /ShardsFailedOverError/.test(stderr);
/** A note of apply that the cluster failed a shard over under a move: also a shard the spec removes (it drained on from its replica). */
const failoverNoted = (res: ChildResult): boolean => res.events.some((e) => e.type === "note" && /the cluster failed the (source|target) \S+ over to its replica/.test(e.message ?? ""));

beforeAll(async () => {
  sb = await startNodes(BASE, 8, undefined, { nodeTimeoutMs: NODE_TIMEOUT_MS });
  work = mkdtempSync(join(tmpdir(), "shardform-chaos-"));
  expect((await runCli(["apply", specFile("three", [0, 1, 2]), "--auto-approve"])).code).toBe(0);
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: BASE_KEYS });
  traffic = new Traffic({ host: "127.0.0.1", port: BASE });
  traffic.start();
});

afterAll(async () => {
  await traffic?.stop();
  traffic?.disconnect();
  await sb?.stop();
});

describe("chaos", () => {
  it(`${ROUNDS} rounds of scale-out and scale-in under faults, with live clients (seed ${SEED})`, { timeout: ROUNDS * 240_000 }, async () => {
    say(`chaos: seed ${SEED}, ${ROUNDS} round(s); replay with CHAOS_SEED=${SEED}`);
    const three = specFile("three", [0, 1, 2]);
    const four = specFile("four", [0, 1, 2, 6]);
    let shards = 3;
    let lostBefore: Losses = { set: new Set(), incr: 0, rpush: new Set() };
    let baseMissingBefore = new Set<string>();
    let told = 0;
    for (let r = 1; r <= ROUNDS; r++) {
      // Each fault twice in a row: once on a scale-out, once on a scale-in (rounds alternate).
      const fault = FAULTS[Math.floor((r - 1) / 2) % FAULTS.length]!;
      const row = rows.get(fault)!;
      row.rounds++;
      const spec = shards === 3 ? four : three;
      const planFile = join(work, `round-${r}.json`);
      const planned = await runCli(["plan", spec, "--out", planFile]);
      expect(planned.code, planned.stderr).toBe(0);
      const at = 1 + Math.floor(random() * 8);
      let moved = 0;
      /** Slots in flight per source->target pair: the fault picks one of the pairs moving keys now. */
      const inflight = new Map<string, number>();
      const pairs = new Map<string, string>();
      let what = "the apply ended before the fault";
      const ackedBefore = traffic.acked;
      const run = (file: string, fault?: Fault): Promise<ChildResult> =>
        runChild(["apply", file, "--auto-approve", "--json-log", "--window", "64", "--max-keys-per-second", "4000"], async (e, child) => {
          if ((e.type === "step-start" || e.type === "step-done") && e.kind === "migrate-slot") {
            const pair = pairs.get(e.id!) ?? /(\S+ -> \S+)$/.exec((e as { text?: string }).text ?? "")![1]!;
            pairs.set(e.id!, pair);
            inflight.set(pair, (inflight.get(pair) ?? 0) + (e.type === "step-start" ? 1 : -1));
          }
          const moving = [...inflight].filter(([, n]) => n > 0).map(([p]) => p.split(" -> ") as [string, string]);
          if (!fault || e.type !== "keys-moved" || ++moved !== at || moving.length === 0) return;
          const [from, to] = moving[Math.floor(random() * moving.length)]!;
          try {
            what = await inject(fault, from, to, child);
            row.landed++;
          } catch (err) {
            // The cluster moved under the fault (e.g. the replica picked was promoted meanwhile): not caused.
            what = `${fault} on ${from} -> ${to} could not be caused: ${(err as Error).message}`;
          }
        });
      let res = await run(planFile, fault);
      const first = res;
      const outcomes = [res.signal ? `killed (${res.signal})` : `exit ${res.code}`];
      if (res.code !== null && res.code !== 0 && !failedOverShards(res.stderr)) say(`round ${r}: apply exited ${res.code}:\n${res.stderr.slice(-2500)}`);
      if (res.code === 0 && !(await judgeSuccess(spec, `round ${r}: apply`))) row.falseSuccesses++;
      if (res.signal === "SIGKILL") {
        res = await run(planFile);
        outcomes.push(`resume: exit ${res.code}`);
        if (res.code === 0 && !(await judgeSuccess(spec, `round ${r}: resumed apply`))) row.falseSuccesses++;
        if (res.code !== 0 && !failedOverShards(res.stderr)) {
          row.resumesRefused++;
          problems.push(`round ${r}: the resume of a killed apply failed:\n${res.stderr.slice(-1500)}`);
        }
      }
      // What the fault left: a failed-over shard (the spec's masters are no longer all masters), stranded keys.
      const after = await observeCluster({ seeds: [a(0), a(1), a(2)] });
      const masters = new Set((shards === 3 ? [0, 1, 2, 6] : [0, 1, 2]).map(a));
      const inSpec = new Set((shards === 3 ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 1, 2, 3, 4, 5]).map(a));
      // A node the spec removes and a member still lists (it was down when it was forgotten) is not a failover.
      const failedOver = after.nodes.some((n) => inSpec.has(n.addr) && masters.has(n.addr) !== (n.role === "master")) || failedOverShards(res.stderr) || failoverNoted(res) || failoverNoted(first);
      if (failedOver) row.failoverRounds++;
      const strandedAfter = (await strandedNow()).stray;
      // Back to the spec: `apply SPEC` fails shards back; a few tries, as an operator would.
      let settled = false;
      for (let k = 0; k < 4 && !settled; k++) {
        await waitConsistent(after.nodes.map((n) => n.addr), undefined, 60_000).catch(() => {});
        const p = await runCli(["plan", spec, "--detailed-exitcode"]);
        if (p.code === 0) {
          settled = true;
          break;
        }
        const again = await runCli(["apply", spec, "--auto-approve"]);
        outcomes.push(`apply SPEC: exit ${again.code}`);
        if (again.code === 0 && !(await judgeSuccess(spec, `round ${r}: apply SPEC`))) row.falseSuccesses++;
        if (again.code !== 0) say(`round ${r}: apply SPEC (try ${k + 1}) exited ${again.code}:\n${again.stderr.slice(-2500)}`);
      }
      if (!settled) {
        say(`round ${r} (${fault}): ${what}; ${outcomes.join(", ")}; the cluster never came back to the spec:\n${(await runCli(["plan", spec])).stdout.slice(0, 3000)}`);
        if (problems.length > told) say(problems.slice(told).join("\n---\n"));
      }
      expect(settled, `round ${r} (${fault}): the cluster never came back to the spec; see above`).toBe(true);
      shards = shards === 3 ? 4 : 3;
      const strandedEnd = (await strandedNow()).stray;
      row.stranded += Math.max(strandedAfter, strandedEnd);
      const losses = await traffic.losses();
      const baseMissing = new Set((await verifyTestKeys(await observeCluster({ seeds: [a(0)] }), { keys: BASE_KEYS })).missing);
      const lost = newLosses(losses, lostBefore) + [...baseMissing].filter((k) => !baseMissingBefore.has(k)).length;
      lostBefore = losses;
      baseMissingBefore = baseMissing;
      if (failedOver) row.lostFailover += lost;
      else row.lostQuiet += lost;
      row.acked += traffic.acked - ackedBefore;
      say(
        `round ${r}/${ROUNDS} ${fault}: ${what}; ${outcomes.join(", ")}; ${failedOver ? "a shard failed over; " : ""}` +
          `lost ${lost} (missing now: set ${losses.set.size}, incr ${losses.incr}, rpush ${losses.rpush.size}, test keys ${baseMissing.size}), stranded ${Math.max(strandedAfter, strandedEnd)}`,
      );
      if (problems.length > told) say(problems.slice(told).join("\n---\n"));
      told = problems.length;
    }
    const table = [
      `Chaos run: seed ${SEED}, ${ROUNDS} rounds, node-timeout ${NODE_TIMEOUT_MS} ms, ${BASE_KEYS} keys plus live writes.`,
      "",
      "| fault | rounds | fault caused | rounds with a failover | acked writes | lost (no failover) | lost (failover rounds) | stranded keys | false successes | resumes refused |",
      "|---|---|---|---|---|---|---|---|---|---|",
      ...[...rows].map(([f, x]) => `| ${f} | ${x.rounds} | ${x.landed} | ${x.failoverRounds} | ${x.acked} | ${x.lostQuiet} | ${x.lostFailover} | ${x.stranded} | ${x.falseSuccesses} | ${x.resumesRefused} |`),
    ].join("\n");
    say(table);
    if (process.env["CHAOS_REPORT"]) writeFileSync(process.env["CHAOS_REPORT"], table + "\n");
    const total = [...rows.values()];
    expect(problems).toEqual([]);
    expect(total.reduce((s, x) => s + x.stranded, 0)).toBe(0);
    expect(total.reduce((s, x) => s + x.falseSuccesses, 0)).toBe(0);
    expect(total.reduce((s, x) => s + x.lostQuiet, 0)).toBe(0);
    expect(total.reduce((s, x) => s + x.resumesRefused, 0)).toBe(0);
  });
});
