import { describe, expect, it } from "vitest";
import { distribute } from "../../src/planner/distribute.js";
import { imbalancePercent, weightedCounts } from "../../src/util/shares.js";
import { SLOT_COUNT } from "../../src/slots.js";

describe("weightedCounts", () => {
  it.each([
    [16384, [1, 1, 1], [5462, 5461, 5461]],
    [16384, [1, 1, 1, 1], [4096, 4096, 4096, 4096]],
    [16384, [2, 1, 1], [8192, 4096, 4096]],
    [10, [1, 1, 1], [4, 3, 3]],
    [0, [1, 2], [0, 0]],
  ] as const)("%i slots by weights %j -> %j", (total, weights, expected) => {
    const c = weightedCounts(total, weights);
    expect(c).toEqual(expected);
    expect(c.reduce((a, b) => a + b, 0)).toBe(total);
  });
});

describe("imbalancePercent", () => {
  it("is 0 for an exact share and infinite for an unwanted owner", () => {
    expect(imbalancePercent([4096, 4096], [4096, 4096])).toBe(0);
    expect(imbalancePercent([5462, 0], [2731, 2731])).toBe(100);
    expect(imbalancePercent([1], [0])).toBe(Infinity);
  });
});

describe("distribute", () => {
  const owners = (spec: [string, number][]): (string | null)[] => {
    const out: (string | null)[] = [];
    for (const [id, n] of spec) for (let i = 0; i < n; i++) out.push(id);
    while (out.length < SLOT_COUNT) out.push(null);
    return out;
  };
  it("leaves a cluster within the threshold alone", () => {
    const cur = owners([["a", 5461], ["b", 5462], ["c", 5461]]);
    const d = distribute(cur, [{ masterId: "a", weight: 1 }, { masterId: "b", weight: 1 }, { masterId: "c", weight: 1 }], 2);
    expect(d.rebalanced).toBe(false);
    expect(d.owner).toEqual(cur);
  });
  it("moves only the excess of each master to a new one", () => {
    const cur = owners([["a", 5461], ["b", 5462], ["c", 5461]]);
    const d = distribute(cur, ["a", "b", "c", "d"].map((m) => ({ masterId: m, weight: 1 })), 2);
    const moved = d.owner.filter((o, s) => o !== cur[s]).length;
    expect(moved).toBe(4096);
    expect(d.owner.filter((o) => o === "d")).toHaveLength(4096);
    // a keeps its lowest-numbered slots
    expect(d.owner.slice(0, 4096).every((o) => o === "a")).toBe(true);
  });
});
