/**
 * Which master should own each slot when balancing by what slots hold (keys or bytes), moving as
 * little as it can. Pure.
 *
 * Each unpinned master has a share of the unpinned total (its weight over the sum of weights) and a
 * band around it (share ± threshold%). Slots stay where they are unless:
 *  - their master is not balanced by weight (it is removed, or pinned elsewhere): the non-empty ones go,
 *    largest first, to the master with the most room below its band's top; empty ones are spread by
 *    slot count (they weigh nothing);
 *  - a master is outside its band: while one is above, it gives the largest slot that does not
 *    overshoot what it must shed (else the smallest that covers it) to the master with the most room,
 *    never taking the giver below its band nor the taker above it; then, while one is below, it takes
 *    from the master with the most to spare in the same way.
 * The lower bound of what any plan must move is the larger of the total above the bands (all of a
 * removed master's slots included) and the total below them. When no move helps any more and a master
 * is still outside its band, the band is unreachable: typically one slot weighs more than a band's top.
 */
import { SLOT_COUNT } from "../slots.js";
import type { ShardTarget } from "./distribute.js";

export interface LoadBalance {
  owner: (string | null)[];
  /** Whether anything moves for balance (false: every master within its band, nothing orphaned). */
  rebalanced: boolean;
  /** Worst deviation from a share, percent, before and after. */
  before: number;
  after: number;
  /** Amount in slots that change owner (orphans included), and the least any plan must move. */
  moved: number;
  lowerBound: number;
  /** Set when some master cannot be brought into its band. */
  unreachable?: { master: string; heavySlots: { slot: number; amount: number }[]; bandTop: number };
  /** The share of each unpinned master (the amount it should hold), by id. */
  share: Map<string, number>;
}

interface Holder {
  id: string;
  share: number;
  lo: number;
  hi: number;
  load: number;
  /** Its non-empty unpinned slots, sorted by amount ascending (ties by slot). */
  slots: { slot: number; amount: number }[];
  count: number;
  weight: number;
}

/** The part of the band a rebalance aims for. */
const HYSTERESIS = 0.9;

const byAmount = (a: { slot: number; amount: number }, b: { slot: number; amount: number }): number => a.amount - b.amount || a.slot - b.slot;

/** Index of the first entry with amount >= x. */
function lowerBoundIndex(list: readonly { amount: number }[], x: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.amount < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A slot of `from` to move, for `need` (what should move) within `limit` (what may move without
 * breaking a band): the largest not above min(need, limit), else the smallest above need within limit.
 */
function pick(from: Holder, need: number, limit: number): number {
  const list = from.slots;
  const cap = Math.min(need, limit);
  let i = lowerBoundIndex(list, cap + 1e-9) - 1;
  if (i >= 0 && list[i]!.amount > 0) return i;
  i = lowerBoundIndex(list, need);
  if (i < list.length && list[i]!.amount <= limit) return i;
  return -1;
}

function deviation(h: Holder): number {
  if (h.share === 0) return h.load === 0 ? 0 : Infinity;
  return (Math.abs(h.load - h.share) / h.share) * 100;
}

export function balanceByLoad(current: readonly (string | null)[], shards: readonly ShardTarget[], thresholdPercent: number, amount: Float64Array): LoadBalance {
  const owner: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  const pinned = new Uint8Array(SLOT_COUNT);
  for (const sh of shards) for (const [a, b] of sh.pinned ?? []) for (let s = a; s <= b; s++) [owner[s], pinned[s]] = [sh.masterId, 1];
  const free = shards.filter((s) => !s.pinned);
  const share = new Map<string, number>();
  if (free.length === 0) return { owner, rebalanced: false, before: 0, after: 0, moved: 0, lowerBound: 0, share };

  let total = 0;
  for (let s = 0; s < SLOT_COUNT; s++) if (!pinned[s]) total += amount[s]!;
  const weights = free.reduce((a, s) => a + s.weight, 0);
  const t = thresholdPercent / 100;
  const holders = free.map((sh): Holder => {
    const sh_ = (total * sh.weight) / weights;
    share.set(sh.masterId, sh_);
    return { id: sh.masterId, share: sh_, lo: sh_ * (1 - t), hi: sh_ * (1 + t), load: 0, slots: [], count: 0, weight: sh.weight };
  });
  const byId = new Map(holders.map((h) => [h.id, h]));
  const orphans: number[] = [];
  const empty: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (pinned[s]) continue;
    const h = byId.get(current[s] ?? "");
    if (!h) {
      (amount[s]! > 0 ? orphans : empty).push(s);
      continue;
    }
    owner[s] = h.id;
    h.count++;
    h.load += amount[s]!;
    if (amount[s]! > 0) h.slots.push({ slot: s, amount: amount[s]! });
  }
  for (const h of holders) h.slots.sort(byAmount);
  const before = Math.max(...holders.map(deviation));
  const orphaned = orphans.reduce((a, s) => a + amount[s]!, 0);
  const lowerBound = Math.max(orphaned + holders.reduce((a, h) => a + Math.max(0, h.load - h.hi), 0), holders.reduce((a, h) => a + Math.max(0, h.lo - h.load), 0));
  if (orphans.length === 0 && empty.length === 0 && holders.every((h) => h.load >= h.lo && h.load <= h.hi)) {
    return { owner, rebalanced: false, before, after: before, moved: 0, lowerBound: 0, share };
  }
  // Once it moves, it aims a little inside the band (HYSTERESIS of the threshold), so that the next
  // measurement, never quite the same, does not find a master just outside it and move again.
  for (const h of holders) [h.lo, h.hi] = [h.share * (1 - t * HYSTERESIS), h.share * (1 + t * HYSTERESIS)];

  let moved = orphaned;
  const give = (to: Holder, slot: number): void => {
    owner[slot] = to.id;
    to.load += amount[slot]!;
    to.count++;
    const e = { slot, amount: amount[slot]! };
    to.slots.splice(lowerBoundIndex(to.slots, e.amount), 0, e);
  };
  // Orphans: the heaviest first, each to the master with the most room.
  orphans.sort((a, b) => amount[b]! - amount[a]! || a - b);
  for (const s of orphans) give(holders.reduce((best, h) => (h.hi - h.load > best.hi - best.load ? h : best)), s);
  // Empty slots weigh nothing: spread by slot count, to the master with the fewest for its weight.
  for (const s of empty) {
    const h = holders.reduce((best, x) => (x.count / x.weight < best.count / best.weight ? x : best));
    owner[s] = h.id;
    h.count++;
  }

  const transfer = (from: Holder, i: number, to: Holder): void => {
    const [e] = from.slots.splice(i, 1);
    from.load -= e!.amount;
    from.count--;
    moved += e!.amount;
    give(to, e!.slot);
  };
  // Masters above their band give first, then masters below take; a move never pushes anyone out of
  // its band, so a master no move can help within a phase stays so until the next pass (a pass of
  // takers frees room that may unblock a giver). Each choice is a linear scan: O(masters) per move.
  const maxBy = (list: readonly Holder[], score: (h: Holder) => number, skip?: ReadonlySet<Holder>): Holder | undefined => {
    let best: Holder | undefined;
    let bestScore = -Infinity;
    for (const h of list) {
      if (skip?.has(h)) continue;
      const v = score(h);
      if (v > bestScore) [best, bestScore] = [h, v];
    }
    return best;
  };
  for (let pass = 0; pass < 8; pass++) {
    let movedInPass = false;
    const blocked = new Set<Holder>();
    for (;;) {
      const over = maxBy(holders, (h) => h.load - h.hi, blocked);
      if (!over || over.load <= over.hi + 1e-9) break;
      const to = maxBy(holders, (h) => (h === over ? -Infinity : h.hi - h.load));
      const i = to && to !== over ? pick(over, over.load - over.hi, Math.min(to.hi - to.load, over.load - over.lo)) : -1;
      if (i < 0) blocked.add(over);
      else {
        transfer(over, i, to!);
        movedInPass = true;
      }
    }
    blocked.clear();
    for (;;) {
      const under = maxBy(holders, (h) => h.lo - h.load, blocked);
      if (!under || under.load >= under.lo - 1e-9) break;
      const need = under.lo - under.load;
      const room = under.hi - under.load;
      const tryFrom = (from: Holder): boolean => {
        if (from === under) return false;
        const i = pick(from, need, Math.min(from.load - from.lo, room));
        if (i < 0) return false;
        transfer(from, i, under);
        return true;
      };
      const first = maxBy(holders, (h) => (h === under ? -Infinity : h.load - h.lo));
      let done = first ? tryFrom(first) : false;
      if (!done) {
        for (const from of holders.filter((h) => h !== under && h !== first && h.load > h.lo).sort((a, b) => b.load - b.lo - (a.load - a.lo))) {
          if ((done = tryFrom(from))) break;
        }
      }
      if (done) movedInPass = true;
      else blocked.add(under);
    }
    if (!movedInPass) break;
  }
  // Unreachable: a master still outside the band itself (not just outside the part aimed for).
  const stuck = holders.filter((h) => h.load > h.share * (1 + t) + 1e-9 || h.load < h.share * (1 - t) - 1e-9).sort((a, b) => deviation(b) - deviation(a))[0];
  const after = Math.max(...holders.map(deviation));
  const out: LoadBalance = { owner, rebalanced: true, before, after, moved, lowerBound, share };
  if (stuck) {
    const tops = Math.max(...holders.map((h) => h.share * (1 + t)));
    const heavySlots = holders
      .flatMap((h) => h.slots)
      .filter((e) => e.amount > tops * 0.5)
      .sort((a, b) => b.amount - a.amount)
      .slice(0, 3);
    out.unreachable = { master: stuck.id, heavySlots, bandTop: stuck.share * (1 + t) };
  }
  return out;
}
