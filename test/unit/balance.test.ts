/** balanceByLoad (src/planner/balance.ts) on random skewed instances: properties, and the unreachable case; loadDrift. */
import { describe, expect, it } from "vitest";
import { balanceByLoad } from "../../src/planner/balance.js";
import { loadDrift, type LoadMeasurement } from "../../src/observe/load.js";
import type { ObservedNode } from "../../src/observe/types.js";
import { SLOT_COUNT } from "../../src/slots.js";
import { rng } from "../../src/testdata/random.js";


const id = (i: number): string => String(i).repeat(40).slice(0, 40);

/** n masters owning equal ranges; amounts heavy-tailed (Pareto), with a hot tag region on master 0. */
function instance(seed: number, n: number, removed = 0) {
  const r = rng(seed);
  const current: (string | null)[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) current.push(id(Math.floor((s * (n + removed)) / SLOT_COUNT)));
  const amount = new Float64Array(SLOT_COUNT);
  for (let s = 0; s < SLOT_COUNT; s++) amount[s] = r() < 0.1 ? 0 : Math.round(1000 / Math.pow(1 - r() * 0.999, 0.6));
  for (let k = 0; k < 40; k++) amount[Math.floor(r() * (SLOT_COUNT / (n + removed)))]! += 20_000 * r();
  const shards = Array.from({ length: n }, (_, i) => ({ masterId: id(i + removed), weight: 1 + (i % 2) }));
  return { current, amount, shards };
}

function loads(owner: (string | null)[], amount: Float64Array): Map<string, number> {
  const out = new Map<string, number>();
  owner.forEach((o, s) => o && out.set(o, (out.get(o) ?? 0) + amount[s]!));
  return out;
}

describe("balanceByLoad on random skewed instances", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const removed = seed % 4 === 0 ? 1 : 0;
    it(`seed ${seed}${removed ? " (a master removed)" : ""}: band reached, every slot owned, at most 1.25x the lower bound`, () => {
      const { current, amount, shards } = instance(seed, 3 + (seed % 4), removed);
      const b = balanceByLoad(current, shards, 5, amount);
      expect(b.unreachable).toBeUndefined();
      expect(b.owner.every((o) => o !== null && shards.some((s) => s.masterId === o))).toBe(true);
      const l = loads(b.owner, amount);
      for (const sh of shards) {
        const share = b.share.get(sh.masterId)!;
        expect(Math.abs(l.get(sh.masterId)! - share) / share).toBeLessThanOrEqual(0.05 + 1e-9);
      }
      let moved = 0;
      for (let s = 0; s < SLOT_COUNT; s++) if (b.owner[s] !== current[s]) moved += amount[s]!;
      expect(moved).toBe(b.moved);
      expect(b.moved).toBeLessThanOrEqual(1.25 * b.lowerBound + 1e-6);
    });
  }

  it("keeps pins, and leaves a balanced cluster alone", () => {
    const { current, amount } = instance(7, 3);
    const shards = [{ masterId: id(0), weight: 1, pinned: [[0, 99]] as [number, number][] }, { masterId: id(1), weight: 1 }, { masterId: id(2), weight: 1 }];
    const b = balanceByLoad(current, shards, 5, amount);
    for (let s = 0; s < 100; s++) expect(b.owner[s]).toBe(id(0));
    const again = balanceByLoad(b.owner, shards, 5, amount);
    expect(again.rebalanced).toBe(false);
    expect(again.owner).toEqual(b.owner);
  });

  it("says when one slot outweighs a band's top, and leaves that slot's master little else", () => {
    const current = Array.from({ length: SLOT_COUNT }, (_, s) => id(Math.floor((s * 4) / SLOT_COUNT)));
    const amount = new Float64Array(SLOT_COUNT).fill(100);
    amount[42] = 100 * SLOT_COUNT; // half of everything in one slot
    const shards = [0, 1, 2, 3].map((i) => ({ masterId: id(i), weight: 1 }));
    const b = balanceByLoad(current, shards, 5, amount);
    expect(b.unreachable).toMatchObject({ master: id(0), heavySlots: [{ slot: 42, amount: 100 * SLOT_COUNT }] });
    const l = loads(b.owner, amount);
    expect(l.get(id(0))! - amount[42]!).toBeLessThan(0.05 * amount[42]!);
  });
});

describe("loadDrift: keys written or deleted since the plan measured", () => {
  const measured = { by: "keys", measuredAt: "t0", method: "", errorPercent: 0, slots: [], shards: { a: { measuredOn: "x:1", keys: 1000, bytes: 0, maxmemory: 0, usedMemory: 0 } } } as LoadMeasurement;
  const live = (keys: number) => ({ nodes: [{ role: "master", keys }, { role: "replica", keys }] as ObservedNode[] });
  it("warns past the threshold, either way, and says what to do", () => {
    expect(loadDrift({ by: "keys", threshold: 5, measuredAt: "t0" }, measured, live(1040))).toEqual([]);
    expect(loadDrift({ by: "keys", threshold: 5, measuredAt: "t0" }, measured, live(1100))[0]).toMatch(/holds 10\.0% more keys \(1100\) than when this plan measured it \(1000, t0\).*Plan again/);
    expect(loadDrift({ by: "memory", threshold: 5, measuredAt: "t0" }, measured, live(800))[0]).toMatch(/20\.0% fewer keys/);
  });
  it("says nothing for a balance by cpu (traffic changes by nature) or by slots", () => {
    expect(loadDrift({ by: "cpu", threshold: 5, measuredAt: "t0" }, measured, live(5000))).toEqual([]);
    expect(loadDrift(undefined, measured, live(5000))).toEqual([]);
  });
});
