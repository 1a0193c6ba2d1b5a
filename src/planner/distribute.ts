/**
 * Which master should own each slot. Pure.
 *
 * Pinned shards get exactly their pins. The other slots are shared among the unpinned shards
 * by weight (largest remainder, ties to the earlier shard). When a rebalance is needed, each
 * master keeps as many of its current slots as its share allows (its lowest-numbered ones) and
 * only the rest move: the fewest moves that reach the target counts.
 */
import { SLOT_COUNT } from "../slots.js";
import { imbalancePercent, weightedCounts } from "../util/shares.js";
import type { SlotRange } from "../slots.js";

export interface ShardTarget {
  masterId: string;
  weight: number;
  pinned?: SlotRange[];
}

export interface Distribution {
  owner: (string | null)[];
  /** Whether unpinned slots are rebalanced (false: within the threshold, left as they are). */
  rebalanced: boolean;
  imbalance: number;
}

export function distribute(current: readonly (string | null)[], shards: readonly ShardTarget[], thresholdPercent: number): Distribution {
  const desired: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  const pinnedSlot = new Uint8Array(SLOT_COUNT);
  for (const sh of shards) {
    for (const [a, b] of sh.pinned ?? []) {
      for (let s = a; s <= b; s++) {
        desired[s] = sh.masterId;
        pinnedSlot[s] = 1;
      }
    }
  }
  const free = shards.filter((s) => !s.pinned);
  const unpinned: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (!pinnedSlot[s]) unpinned.push(s);
  if (free.length === 0) return { owner: desired, rebalanced: false, imbalance: 0 };

  const index = new Map(free.map((s, i) => [s.masterId, i]));
  const targets = weightedCounts(unpinned.length, free.map((s) => s.weight));
  const held: number[][] = free.map(() => []);
  let strays = false; // an unpinned slot owned by nobody or by a node outside `free`
  for (const s of unpinned) {
    const o = current[s];
    const i = o === null || o === undefined ? undefined : index.get(o);
    if (i === undefined) strays = true;
    else held[i]!.push(s);
  }
  const imbalance = imbalancePercent(held.map((h) => h.length), targets);
  if (!strays && imbalance <= thresholdPercent) {
    for (const s of unpinned) desired[s] = current[s]!;
    return { owner: desired, rebalanced: false, imbalance };
  }
  const pool: number[] = [];
  free.forEach((sh, i) => {
    const keep = held[i]!.slice(0, targets[i]!);
    for (const s of keep) desired[s] = sh.masterId;
    pool.push(...held[i]!.slice(targets[i]!));
  });
  for (const s of unpinned) {
    const o = current[s];
    if (o === null || o === undefined || !index.has(o)) pool.push(s);
  }
  pool.sort((a, b) => a - b);
  let p = 0;
  free.forEach((sh, i) => {
    const need = targets[i]! - Math.min(held[i]!.length, targets[i]!);
    for (let k = 0; k < need; k++) desired[pool[p++]!] = sh.masterId;
  });
  return { owner: desired, rebalanced: true, imbalance };
}
