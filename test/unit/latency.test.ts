/** The --max-latency-ms governor's decisions (src/executor/latency.ts), as pure functions. */
import { describe, expect, it } from "vitest";
import { SLOWEST, firstPace, nextPace, withHidden, type Pace } from "../../src/executor/latency.js";
import { latencyLine } from "../../src/cli/progress.js";

const limits = { keys: 100, inFlight: 16, rate: 0 };

describe("nextPace", () => {
  it("starts with one MIGRATE at a time, at the --pipeline batch, at a moderate rate under any --max-keys-per-second", () => {
    expect(firstPace(limits)).toEqual({ keys: 100, inFlight: 1, rate: 20_000 });
    expect(firstPace({ ...limits, rate: 5000 })).toEqual({ keys: 100, inFlight: 1, rate: 5000 });
  });

  it("over the budget, cuts MIGRATEs in flight first, then the rate, then the batch; never below the slowest pace", () => {
    let p: Pace = { keys: 100, inFlight: 8, rate: 40_000 };
    const seen: Pace[] = [];
    for (let i = 0; i < 30; i++) seen.push((p = nextPace(p, 0.05, limits)));
    expect(seen[0]).toEqual({ keys: 100, inFlight: 4, rate: 40_000 });
    expect(seen[3]).toEqual({ keys: 100, inFlight: 1, rate: 28_000 });
    expect(seen.findIndex((x) => x.keys < 100)).toBeGreaterThan(seen.findIndex((x) => x.rate === SLOWEST.rate));
    expect(p).toEqual(SLOWEST);
  });

  it("with room under the budget, grows the batch back first, then the rate, then MIGRATEs in flight, up to the limits", () => {
    let p: Pace = { ...SLOWEST };
    for (let i = 0; i < 200; i++) p = nextPace(p, 0, { ...limits, rate: 50_000 });
    expect(p).toEqual({ keys: 100, inFlight: 16, rate: 50_000 });
    expect(nextPace({ keys: 10, inFlight: 1, rate: 500 }, 0, limits)).toEqual({ keys: 15, inFlight: 1, rate: 500 });
  });

  it("holds between 0.3% and 1% of PINGs over the budget", () => {
    const p = { keys: 100, inFlight: 2, rate: 30_000 };
    expect(nextPace(p, 0.005, limits)).toBe(p);
  });
});

describe("withHidden", () => {
  it("counts the PINGs a long wait kept from going out, one 2 ms interval apart, as a client sending all along would have seen them", () => {
    expect(withHidden(0.3)).toEqual([0.3]);
    expect(withHidden(9)).toEqual([9, 7, 5, 3]);
  });
});

describe("latencyLine", () => {
  it("says the budget, what the PINGs waited and how fast the moves went", () => {
    expect(latencyLine({ budgetMs: 2, probes: 5000, p99Ms: 1.7, maxMs: 12.34, topRate: 45_000, lastRate: 30_000, overTicks: 3, ticks: 40 })).toBe(
      "budget 2 ms; a PING on the moving nodes waited 1.70 ms at the 99th percentile (max 12.3 ms, 5000 PINGs, over the budget in 3 of 40 quarter second(s)); the pace went up to 45000 keys/s",
    );
    expect(latencyLine({ budgetMs: 2, probes: 0, p99Ms: 0, maxMs: 0, topRate: 20_000, lastRate: 20_000, overTicks: 0, ticks: 0 })).toContain("no PING was answered");
  });
});
