/**
 * Properties over many generated topologies: the plan is valid step by step, its end state covers
 * 16384 slots exactly once with the spec's members and roles, it moves the fewest slots that reach
 * the target counts, and the same input gives the same plan.
 */
import { describe, expect, it } from "vitest";
import { planSteps } from "../../src/planner/plan.js";
import { weightedCounts } from "../../src/planner/distribute.js";
import { simulate, modelFromObserved } from "../../src/plan/simulate.js";
import { SLOT_COUNT } from "../../src/slots.js";
import { A, idOf, observed, spec, type MasterDesc } from "../helpers/build.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(seed: number) {
  const r = rng(seed);
  const nMasters = 1 + Math.floor(r() * 7);
  // random contiguous split of the slot space
  const cuts = new Set<number>();
  while (cuts.size < nMasters - 1) cuts.add(1 + Math.floor(r() * (SLOT_COUNT - 2)));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), SLOT_COUNT];
  let port = 7000;
  const masters: MasterDesc[] = [];
  for (let i = 0; i < nMasters; i++) {
    const m = A(port++);
    const replicas = Array.from({ length: Math.floor(r() * 3) }, () => A(port++));
    masters.push({ addr: m, slots: [`${bounds[i]}-${bounds[i + 1]! - 1}`], replicas, keys: Math.floor(r() * 1000) });
  }
  const spares = Array.from({ length: Math.floor(r() * 5) }, () => A(port++));
  // desired: keep some masters, drop some, add spares as masters or replicas
  const kept = masters.filter(() => r() < 0.75);
  if (kept.length === 0) kept.push(masters[0]!);
  const shards = kept.map((m) => ({
    master: m.addr,
    replicas: (m.replicas ?? []).filter(() => r() < 0.7),
    weight: r() < 0.3 ? 1 + Math.floor(r() * 3) : 1,
  }));
  for (const s of spares) {
    if (r() < 0.5) shards.push({ master: s, replicas: [], weight: 1 });
    else shards[Math.floor(r() * shards.length)]!.replicas.push(s);
  }
  return { o: observed(masters, spares), sp: spec(shards, { threshold: [0, 2, 10][Math.floor(r() * 3)]! }) };
}

describe("planner properties over generated topologies", () => {
  const seeds = Array.from({ length: 150 }, (_, i) => i + 1);
  it.each(seeds)("seed %i", (seed) => {
    const { o, sp } = generate(seed);
    const { steps } = planSteps(sp, o);
    const end = simulate(o, steps); // throws on any invalid intermediate step

    // every slot has exactly one owner, and it is a spec master
    const masters = new Set(sp.shards.map((s) => idOf(s.master)));
    expect(end.owner.every((x) => x !== null && masters.has(x))).toBe(true);
    // members and roles are the spec's
    expect(new Set([...end.nodes.values()].map((n) => n.addr))).toEqual(new Set(sp.shards.flatMap((s) => [s.master, ...s.replicas])));
    for (const s of sp.shards) for (const rep of s.replicas) expect(end.nodes.get(idOf(rep))!.masterId).toBe(idOf(s.master));

    // fewest moves: every master that ends above... keeps all it can
    const start = modelFromObserved(o);
    const moved = steps.filter((s) => s.kind === "migrate-slot").length;
    const held = new Map<string, number>();
    for (const x of start.owner) if (x) held.set(x, (held.get(x) ?? 0) + 1);
    const endCount = new Map<string, number>();
    for (const x of end.owner) endCount.set(x!, (endCount.get(x!) ?? 0) + 1);
    let minimum = 0;
    for (const [id, n] of held) minimum += Math.max(0, n - (endCount.get(id) ?? 0));
    expect(moved).toBe(minimum);
    // counts are the weighted targets unless the planner stayed within the threshold
    if (moved > 0) {
      const want = weightedCounts(SLOT_COUNT, sp.shards.map((s) => s.weight));
      sp.shards.forEach((s, i) => expect(endCount.get(idOf(s.master)) ?? 0).toBe(want[i]));
    }
    // deterministic
    expect(JSON.stringify(planSteps(sp, o).steps)).toBe(JSON.stringify(steps));
  });
});
