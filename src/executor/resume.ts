/**
 * On resume: does the live cluster match the steps the journal says are done? The state they imply is
 * the plan's starting snapshot with the done steps applied (in plan order; the done set is closed
 * under needs, so any order apply ran them in gives the same state). Steps in flight may be half
 * done, so what they touch may be in either state. Pure.
 */
import type { ObservedCluster } from "../observe/types.js";
import { replicasOf, simulate, type Model } from "../plan/simulate.js";
import type { Step } from "../plan/types.js";
import { SLOT_COUNT, expandRanges } from "../slots.js";
import { planReplicas, shardSwaps, withSwaps } from "../safety/rules.js";

function roleText(role: string, masterId: string | null, name: (id: string | null) => string): string {
  return role === "master" ? "a master" : `a replica of ${name(masterId)}`;
}

export function resumeMismatches(snapshot: ObservedCluster, steps: readonly Step[], done: ReadonlySet<string>, inFlight: ReadonlySet<string>, live: ObservedCluster): string[] {
  const planned = simulate(snapshot, steps.filter((s) => done.has(s.id)));
  // A shard the cluster failed over meanwhile (safety rule 4) is served by its promoted replica: the moves go on from it.
  const model = withSwaps(planned.nodes, planned.owner, shardSwaps(planned.nodes, live.nodes, planReplicas(snapshot, steps)));
  const looseNodes = new Set<string>();
  const looseSlots = new Set<number>();
  /** Sources of unfinished moves: Redis may turn them into replicas when they lose their last slot. */
  const movingSources = new Set<string>();
  for (const s of steps) {
    if (!inFlight.has(s.id)) continue;
    switch (s.kind) {
      case "meet":
      case "forget-node":
      case "reset-node":
        looseNodes.add(s.node.id);
        break;
      case "replicate":
      case "failover":
        looseNodes.add(s.replica.id);
        looseNodes.add(s.master.id);
        for (const r of replicasOf(model, s.master.id)) looseNodes.add(r.id);
        if (s.kind === "failover") for (const x of expandRanges(slotsOwned(model, s.master.id))) looseSlots.add(x);
        break;
      case "add-slots":
        for (const x of expandRanges(s.ranges)) looseSlots.add(x);
        break;
      case "migrate-slot":
        looseSlots.add(s.slot);
        movingSources.add(s.from.id);
        break;
      case "move-stray-keys":
        looseSlots.add(s.slot); // its holder may be left IMPORTING it
        break;
    }
  }
  const liveById = new Map(live.nodes.map((n) => [n.id, n]));
  const name = (id: string | null): string => (id === null ? "-" : (liveById.get(id)?.addr ?? model.nodes.get(id)?.addr ?? id.slice(0, 8)));
  // A master left without slots (or about to be) may have become a replica of a new owner, and its replicas may have followed it.
  const mayMigrate = new Set([...model.nodes.values()].filter((n) => n.role === "master" && (!model.owner.includes(n.id) || movingSources.has(n.id))).map((n) => n.id));
  const out: string[] = [];
  for (const n of model.nodes.values()) {
    if (looseNodes.has(n.id)) continue;
    const l = liveById.get(n.id);
    if (!l) {
      out.push(`${n.addr} should be a member but is not`);
      continue;
    }
    const expected = roleText(n.role, n.masterId, name);
    const actual = roleText(l.role, l.masterId, name);
    if (expected === actual) continue;
    if (mayMigrate.has(n.id) && l.role === "replica") continue;
    if (n.role === "replica" && mayMigrate.has(n.masterId ?? "") && l.role === "replica") continue;
    out.push(`${n.addr} should be ${expected} but is ${actual}`);
  }
  for (const l of live.nodes) if (!model.nodes.has(l.id) && !looseNodes.has(l.id)) out.push(`${l.addr} is a member but should not be at this point`);
  const liveOwner: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  for (const n of live.nodes) if (n.role === "master") for (const x of expandRanges(n.slots)) liveOwner[x] = liveOwner[x] ?? n.id;
  const wrong: number[] = [];
  for (let x = 0; x < SLOT_COUNT; x++) if (!looseSlots.has(x) && liveOwner[x] !== model.owner[x]) wrong.push(x);
  if (wrong.length > 0) {
    const x = wrong[0]!;
    out.push(`${wrong.length} slot(s) have another owner than the done steps give (first: slot ${x}, owned by ${name(liveOwner[x] ?? null)}, expected ${name(model.owner[x] ?? null)})`);
  }
  for (const n of live.nodes) {
    for (const m of [...n.migrating, ...n.importing]) if (!looseSlots.has(m.slot)) out.push(`slot ${m.slot} is open on ${n.addr}, but no step in flight moves it`);
  }
  return out;
}

function slotsOwned(m: Pick<Model, "owner">, id: string): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (m.owner[s] === id) out.push([s, s]);
  return out;
}
