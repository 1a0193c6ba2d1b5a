/**
 * Before a plan is shown: are there keys in the slots it moves that are large enough to block their
 * source for long? MIGRATE moves a key in one blocking command, and apply keeps each MIGRATE under a
 * quarter of cluster-node-timeout. A bounded sample (a few keys of up to 2000 slots per source, sizes
 * from MEMORY USAGE) finds the big ones; it is a sample, and says so. Read-only.
 */
import { NodeClient, type Access } from "../redis/connect.js";
import type { NodeAddr } from "../redis/node-key.js";
import { mapLimit } from "../util/limit.js";

export interface BigKey {
  key: string;
  slot: number;
  bytes: number;
  node: NodeAddr;
}

export interface BigKeySurvey {
  sampledKeys: number;
  big: BigKey[];
  /** The smallest cluster-node-timeout of the sources, when CONFIG GET answered. */
  nodeTimeoutMs: number | null;
}

export const BIG_KEY_BYTES = 8 << 20;

export async function surveyBigKeys(moves: { slot: number; from: NodeAddr }[], access: Access | undefined, opts: { slotsPerSource?: number; keysPerSlot?: number; thresholdBytes?: number } = {}): Promise<BigKeySurvey> {
  const bySource = new Map<NodeAddr, number[]>();
  for (const m of moves) bySource.set(m.from, [...(bySource.get(m.from) ?? []), m.slot]);
  const perSource = opts.slotsPerSource ?? 2000;
  const perSlot = opts.keysPerSlot ?? 5;
  const threshold = opts.thresholdBytes ?? BIG_KEY_BYTES;
  let sampled = 0;
  const big: BigKey[] = [];
  const timeouts: number[] = [];
  await mapLimit([...bySource], 8, async ([addr, slots]) => {
    const step = Math.max(1, Math.ceil(slots.length / perSource));
    const chosen = slots.filter((_, i) => i % step === 0);
    const c = await NodeClient.connect(addr, { readOnly: true, access });
    try {
      const t = await c.call("config", "get", "cluster-node-timeout").catch(() => null);
      if (Array.isArray(t) && Number(t[1]) > 0) timeouts.push(Number(t[1]));
      const found = await c.bigPipeline(chosen.map((s) => ["cluster", "getkeysinslot", s, perSlot]), 30_000);
      const keys: { key: string; slot: number }[] = [];
      found.forEach(([err, ks], i) => {
        if (!err) for (const k of ks as string[]) keys.push({ key: k, slot: chosen[i]! });
      });
      sampled += keys.length;
      if (keys.length === 0) return;
      const sizes = await c.bigPipeline(keys.map((k) => ["memory", "usage", k.key, "samples", 0]), 30_000);
      sizes.forEach(([err, n], i) => {
        if (!err && Number(n) >= threshold) big.push({ ...keys[i]!, bytes: Number(n), node: addr });
      });
    } finally {
      await c.close();
    }
  });
  big.sort((a, b) => b.bytes - a.bytes);
  return { sampledKeys: sampled, big, nodeTimeoutMs: timeouts.length ? Math.min(...timeouts) : null };
}

/** The survey as plan warnings. */
export function bigKeyWarnings(s: BigKeySurvey): string[] {
  if (s.big.length === 0) return [];
  const mb = (n: number): string => `${(n / (1 << 20)).toFixed(1)} MB`;
  const budget = s.nodeTimeoutMs ? `${(s.nodeTimeoutMs / 4000).toFixed(2)} s (a quarter of cluster-node-timeout ${s.nodeTimeoutMs} ms)` : "a quarter of cluster-node-timeout";
  const listed = s.big.slice(0, 5).map((k) => `"${k.key}" (${mb(k.bytes)}, slot ${k.slot} on ${k.node})`);
  return [
    `the slots this plan moves hold big keys (a sample of ${s.sampledKeys} keys found ${s.big.length}${s.big.length > 5 ? ", the 5 biggest shown" : ""}): ${listed.join(", ")}. ` +
      `MIGRATE blocks the source while it moves one; apply keeps each MIGRATE under ${budget} and stops, naming the key, if one does not fit. Raise cluster-node-timeout first if needed`,
  ];
}
