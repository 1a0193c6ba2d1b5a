/**
 * What each slot holds, for balancing by keys or memory (spec `cluster.balance.by`). Read-only; each
 * shard is measured on an in-sync replica where it has one, so that the masters serving traffic do
 * less work, else on its master.
 *  - keys: CLUSTER COUNTKEYSINSLOT of every slot the master owns (one pipeline per shard): exact.
 *  - memory: SCAN + MEMORY USAGE of every key, up to a key budget: exact. Beyond it, the keys
 *    scanned so far are the sample (SCAN walks the keyspace in hash order, not slot by slot), every
 *    slot's size is its key count times the mean size of its sampled keys (or of the shard's, for a
 *    slot with no key sampled), and the expected error of a shard's total is given (95%).
 * The measurement goes into the snapshot (not into the staleness fingerprint: data changes all the time).
 */
import calculateSlot from "cluster-key-slot";
import { ClusterStateError } from "../errors.js";
import { NodeClient, type Access } from "../redis/connect.js";
import type { NodeAddr } from "../redis/node-key.js";
import { SLOT_COUNT, expandRanges } from "../slots.js";
import { mapLimit } from "../util/limit.js";
import type { ObservedCluster, ObservedNode } from "./types.js";

export type BalanceBy = "slots" | "keys" | "memory" | "cpu";
export type LoadBy = Exclude<BalanceBy, "slots">;

export interface ShardLoad {
  /** Where the shard was measured (an in-sync replica, else the master). */
  measuredOn: NodeAddr;
  keys: number;
  bytes: number;
  /** The master's maxmemory (0: no limit) and used_memory, from INFO memory. */
  maxmemory: number;
  usedMemory: number;
  /** The master's INFO used_memory_dataset, what a sampled estimate is checked against. */
  dataset?: number;
  /** By memory: how many keys MEMORY USAGE was asked about (all of them when exact). */
  sampledKeys?: number;
}

export interface LoadMeasurement {
  by: LoadBy;
  measuredAt: string;
  /** How it was measured, with the expected error, in words. */
  method: string;
  /** Largest expected error of a shard's total, percent (95%); 0 when exact. */
  errorPercent: number;
  /** Each slot holding anything: [slot, keys, bytes, cpu] (bytes 0 unless by memory; cpu: microseconds spent on it over the load window, by cpu). */
  slots: [number, number, number, number][];
  /** By cpu: the seconds between the two readings. */
  windowSeconds?: number;
  /** By master id. */
  shards: Record<string, ShardLoad>;
  /** By memory: the largest keys measured (up to 20), to name what fills a heavy slot. */
  bigKeys?: { slot: number; key: string; bytes: number }[];
}

/**
 * Keys MEMORY USAGE is asked about, over all shards (each gets its part of it by its key count, at
 * least MIN_SHARD_BUDGET), before measuring turns to a sample: what keeps a 1M-key cluster's
 * measurement within about 3 s here.
 */
export const DEFAULT_KEY_BUDGET = 400_000;
const MIN_SHARD_BUDGET = 20_000;
const SCAN_COUNT = 2000;

/** The node to measure a master on: an in-sync replica if it has one. */
function measureNode(master: ObservedNode, nodes: readonly ObservedNode[]): ObservedNode {
  return nodes.find((n) => n.role === "replica" && n.masterId === master.id && n.reachable && n.masterLinkUp) ?? master;
}

export async function measureLoad(o: ObservedCluster, by: LoadBy, access: Access | undefined, opts: { keyBudget?: number; minShardBudget?: number; now?: () => Date; loadWindowS?: number } = {}): Promise<LoadMeasurement> {
  if (by === "cpu") return measureCpu(o, access, opts.loadWindowS ?? DEFAULT_LOAD_WINDOW_S, opts.now);
  const budget = opts.keyBudget ?? DEFAULT_KEY_BUDGET;
  const masters = o.nodes.filter((n) => n.role === "master" && n.slots.length > 0 && n.reachable);
  const allKeys = masters.reduce((a, m) => a + (m.keys ?? 0), 0);
  const shardBudget = (m: ObservedNode): number => Math.max(opts.minShardBudget ?? MIN_SHARD_BUDGET, Math.ceil((budget * (m.keys ?? 0)) / Math.max(allKeys, 1)));
  const perSlot = new Map<number, [number, number]>();
  const shards: Record<string, ShardLoad> = {};
  const errors: number[] = [];
  const big: { slot: number; key: string; bytes: number }[] = [];
  await mapLimit(masters, 16, async (m) => {
    const on = measureNode(m, o.nodes);
    const owned = expandRanges(m.slots);
    const c = await NodeClient.connect(on.addr, { readOnly: true, access });
    try {
      const counts = (await c.bigPipeline(owned.map((s) => ["cluster", "countkeysinslot", s]), 60_000)).map(([err, n]) => (err ? 0 : Number(n)));
      const keys = counts.reduce((a, b) => a + b, 0);
      let bytes = 0;
      let sampledKeys: number | undefined;
      if (by === "keys") {
        owned.forEach((s, i) => counts[i]! > 0 && perSlot.set(s, [counts[i]!, 0]));
      } else {
        if (on.role === "replica") await c.call("readonly");
        const r = await sampleMemory(c, new Set(owned), shardBudget(m));
        sampledKeys = r.sampled;
        big.push(...r.big);
        const mean = r.sampled > 0 ? r.bytes / r.sampled : 0;
        owned.forEach((s, i) => {
          const n = counts[i]!;
          if (n === 0) return;
          const got = r.perSlot.get(s);
          const b = r.complete && got ? got.bytes : got && got.keys > 0 ? (got.bytes / got.keys) * n : mean * n;
          perSlot.set(s, [n, Math.round(b)]);
          bytes += Math.round(b);
        });
        if (!r.complete && r.sampled > 1 && mean > 0) {
          const sd = Math.sqrt(Math.max(0, r.sumSq / r.sampled - mean * mean));
          errors.push((196 * sd) / mean / Math.sqrt(r.sampled) * Math.sqrt(Math.max(0, 1 - r.sampled / Math.max(keys, 1))));
        }
      }
      shards[m.id] = {
        measuredOn: on.addr,
        keys,
        bytes,
        // The master's INFO memory, as observe read it just before.
        maxmemory: m.maxmemory ?? 0,
        usedMemory: m.usedMemory ?? 0,
        ...(m.memoryDataset !== undefined ? { dataset: m.memoryDataset } : {}),
        ...(sampledKeys !== undefined ? { sampledKeys } : {}),
      };
    } finally {
      await c.close();
    }
  });
  const slots = [...perSlot].sort((a, b) => a[0] - b[0]).map(([s, [k, b]]) => [s, k, b, 0] as [number, number, number, number]);
  const errorPercent = errors.length ? Math.round(Math.max(...errors) * 10) / 10 : 0;
  const replicas = Object.values(shards).filter((s) => !masters.some((m) => m.addr === s.measuredOn)).length;
  const where = `on ${replicas} in-sync replica(s) and ${masters.length - replicas} master(s)`;
  const total = Object.values(shards).reduce((a, s) => a + s.keys, 0);
  const sampled = Object.values(shards).reduce((a, s) => a + (s.sampledKeys ?? 0), 0);
  const estimated = Object.values(shards).reduce((a, s) => a + s.bytes, 0);
  const dataset = Object.values(shards).reduce((a, s) => a + (s.dataset ?? 0), 0);
  const check = dataset > 0 ? `; the estimate is ${Math.round((estimated / dataset) * 100)}% of the masters' INFO used_memory_dataset` : "";
  const method =
    by === "keys"
      ? `CLUSTER COUNTKEYSINSLOT of every slot (exact), ${where}`
      : errorPercent === 0 && sampled >= total
        ? `MEMORY USAGE of every key (${total} keys, SCAN; exact), ${where}`
        : `MEMORY USAGE of ${sampled} of ${total} keys (SCAN sample, ${budget} keys in all); a slot's size is its key count times its sampled keys' mean size; expected error of a shard's total ±${errorPercent}% (95%)${check}, ${where}`;
  big.sort((x, y) => y.bytes - x.bytes || x.key.localeCompare(y.key));
  return { by, measuredAt: (opts.now?.() ?? new Date()).toISOString(), method, errorPercent, slots, shards, ...(by === "memory" ? { bigKeys: big.slice(0, BIG_KEYS) } : {}) };
}

interface Sample {
  complete: boolean;
  sampled: number;
  bytes: number;
  sumSq: number;
  perSlot: Map<number, { keys: number; bytes: number }>;
  /** The largest keys seen, largest first. */
  big: { slot: number; key: string; bytes: number }[];
}

const BIG_KEYS = 20;

/**
 * SCAN + MEMORY USAGE until the keyspace ends or `budget` keys are measured: each round trip carries
 * the MEMORY USAGE of the keys the previous SCAN returned and the next SCAN.
 */
async function sampleMemory(c: NodeClient, owned: ReadonlySet<number>, budget: number): Promise<Sample> {
  const out: Sample = { complete: false, sampled: 0, bytes: 0, sumSq: 0, perSlot: new Map(), big: [] };
  let cursor = "0";
  let pending: Buffer[] = [];
  let started = false;
  for (;;) {
    const more = !started || (cursor !== "0" && out.sampled + pending.length < budget);
    started = true;
    if (!more && pending.length === 0) break;
    const res = await c.pipelineBuffer([...pending.map((k) => ["memory", "usage", k]), ...(more ? [["scan", cursor, "count", SCAN_COUNT]] : [])], 60_000);
    res.slice(0, pending.length).forEach(([err, n], i) => {
      if (err || n === null) return; // expired or deleted meanwhile
      const b = Number(n);
      const key = pending[i]!;
      const slot = calculateSlot(key);
      const e = out.perSlot.get(slot) ?? { keys: 0, bytes: 0 };
      e.keys++;
      e.bytes += b;
      out.perSlot.set(slot, e);
      out.sampled++;
      out.bytes += b;
      out.sumSq += b * b;
      if (out.big.length < BIG_KEYS || b > out.big[out.big.length - 1]!.bytes) {
        out.big.push({ slot, key: key.toString(), bytes: b });
        out.big.sort((x, y) => y.bytes - x.bytes);
        if (out.big.length > BIG_KEYS) out.big.pop();
      }
    });
    pending = [];
    if (!more) break;
    const [scanErr, reply] = res[res.length - 1]!;
    if (scanErr) throw scanErr;
    const [next, keys] = reply as [Buffer, Buffer[]];
    cursor = next.toString();
    // SCAN may return a key twice (while the keyspace rehashes): rare enough not to keep every key to check.
    pending = keys.filter((k) => owned.has(calculateSlot(k)));
  }
  out.complete = cursor === "0";
  return out;
}

/** Per slot, the amount balanced by: keys, bytes or CPU microseconds. */
export function slotAmounts(m: LoadMeasurement): Float64Array {
  const out = new Float64Array(SLOT_COUNT);
  for (const [s, k, b, c] of m.slots) out[s] = m.by === "keys" ? k : m.by === "memory" ? b : c;
  return out;
}

/** Seconds between the two CLUSTER SLOT-STATS readings of a balance by cpu (`--load-window`). */
export const DEFAULT_LOAD_WINDOW_S = 10;

/** Thrown when a server cannot count CPU per slot; the message says what is missing and how to turn it on. */
export class CpuStatsUnavailable extends ClusterStateError {}

type SlotStats = Map<number, { keys: number; cpu: number | undefined }>;

/** CLUSTER SLOT-STATS SLOTSRANGE over a master's ranges: key-count and cpu-usec per slot. */
async function slotStats(c: NodeClient, m: ObservedNode): Promise<SlotStats> {
  const res = await c.pipeline(m.slots.map(([a, b]) => ["cluster", "slot-stats", "slotsrange", a, b]), 30_000);
  const out: SlotStats = new Map();
  for (const [err, reply] of res) {
    if (err) {
      throw new CpuStatsUnavailable(
        /unknown subcommand|unknown command/i.test(err.message)
          ? `balance.by: cpu needs per-slot CPU counters, which ${m.addr} (${m.server ?? "this server"}) does not have: CLUSTER SLOT-STATS exists from Valkey 8.0 on, with cluster-slot-stats-enabled yes. Balance by keys or memory here, or upgrade`
          : `CLUSTER SLOT-STATS on ${m.addr} failed: ${err.message}`,
      );
    }
    for (const [slot, fields] of reply as [number, (string | number)[]][]) {
      const f = new Map<string, number>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(String(fields[i]), Number(fields[i + 1]));
      out.set(Number(slot), { keys: f.get("key-count") ?? 0, cpu: f.get("cpu-usec") });
    }
  }
  if ([...out.values()].some((x) => x.cpu === undefined)) {
    throw new CpuStatsUnavailable(
      `balance.by: cpu needs per-slot CPU counters, which ${m.addr} does not keep: turn them on with \`CONFIG SET cluster-slot-stats-enabled yes\` on every master (and in their config files), let the usual traffic run for a while, then plan again`,
    );
  }
  return out;
}

/** CPU per slot: the difference of two SLOT-STATS readings `windowS` apart, on each master (the counters reset when a slot changes owner). */
async function measureCpu(o: ObservedCluster, access: Access | undefined, windowS: number, now?: () => Date): Promise<LoadMeasurement> {
  const masters = o.nodes.filter((n) => n.role === "master" && n.slots.length > 0 && n.reachable);
  // Every connection or none: one that cannot be opened closes those that were.
  const opened = await Promise.allSettled(masters.map((m) => NodeClient.connect(m.addr, { readOnly: true, access })));
  const conns = opened.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(conns.map((c) => c.close()));
    throw failed.reason;
  }
  try {
    const first = await mapLimit(masters, 16, (m, i) => slotStats(conns[i]!, m));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const second = await mapLimit(masters, 16, (m, i) => slotStats(conns[i]!, m));
    const seconds = (Date.now() - t0) / 1000;
    const slots: [number, number, number, number][] = [];
    const shards: Record<string, ShardLoad> = {};
    masters.forEach((m, i) => {
      let keys = 0;
      for (const [slot, b] of second[i]!) {
        const a = first[i]!.get(slot);
        const cpu = a && a.cpu! <= b.cpu! ? b.cpu! - a.cpu! : b.cpu!; // a counter that went down was reset
        keys += b.keys;
        if (b.keys > 0 || cpu > 0) slots.push([slot, b.keys, 0, cpu]);
      }
      shards[m.id] = { measuredOn: m.addr, keys, bytes: 0, maxmemory: 0, usedMemory: 0 };
    });
    slots.sort((a, b) => a[0] - b[0]);
    return {
      by: "cpu",
      measuredAt: (now?.() ?? new Date()).toISOString(),
      method: `CPU time per slot from CLUSTER SLOT-STATS, two readings ${seconds.toFixed(1)} s apart on each of ${masters.length} master(s): it reflects the traffic of that window only`,
      errorPercent: 0,
      slots,
      shards,
      windowSeconds: Math.round(seconds * 10) / 10,
    };
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
}

/**
 * Before apply starts a plan that balances by keys or memory: the cluster's key count against the
 * plan's measurement. Data changes all the time, so a difference is a warning, not a refusal. Pure.
 */
export function loadDrift(balance: { by: string; threshold: number; measuredAt: string } | undefined, measured: LoadMeasurement | undefined, live: Pick<ObservedCluster, "nodes">): string[] {
  if (!balance || !measured || balance.by === "cpu") return [];
  const then = Object.values(measured.shards).reduce((a, s) => a + s.keys, 0);
  const now = live.nodes.filter((n) => n.role === "master").reduce((a, n) => a + (n.keys ?? 0), 0);
  if (then === 0) return [];
  const change = ((now - then) / then) * 100;
  if (Math.abs(change) <= balance.threshold) return [];
  return [
    `the cluster holds ${Math.abs(change).toFixed(1)}% ${change > 0 ? "more" : "fewer"} keys (${now}) than when this plan measured it (${then}, ${balance.measuredAt}), more than its ${balance.threshold}% threshold: ` +
      `the balance it reaches may be off. Plan again to measure anew`,
  ];
}
