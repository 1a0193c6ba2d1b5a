/**
 * On resume: does the live cluster match the plan's completed steps (the done prefix, plus slot
 * moves that parallel lanes finished ahead of it)? The steps in doubt may be half done, so what
 * they touch may be in either state. Pure.
 */
import type { ObservedCluster } from "../observe/types.js";
import { simulate } from "../plan/simulate.js";
import type { Step } from "../plan/types.js";
import { SLOT_COUNT, expandRanges } from "../slots.js";

export function prefixMismatches(snapshot: ObservedCluster, done: readonly Step[], inDoubt: readonly Step[], live: ObservedCluster): string[] {
  const model = simulate(snapshot, done);
  const looseNodes = new Set<string>();
  const looseSlots = new Set<number>();
  for (const s of inDoubt) {
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
        break;
      case "add-slots":
        for (const x of expandRanges(s.ranges)) looseSlots.add(x);
        break;
      case "migrate-slot":
        looseSlots.add(s.slot);
        break;
    }
  }
  const out: string[] = [];
  const liveById = new Map(live.nodes.map((n) => [n.id, n]));
  // Redis moves a master that lost its last slot, and its replicas, under the new owner (replica
  // migration): a slotless master that became a replica, or a replica of one that moved, is expected.
  const slotless = new Set([...model.nodes.values()].filter((n) => n.role === "master" && !model.owner.includes(n.id)).map((n) => n.id));
  for (const n of model.nodes.values()) {
    if (looseNodes.has(n.id)) continue;
    const l = liveById.get(n.id);
    if (!l) {
      out.push(`${n.addr} should be a member but is not`);
      continue;
    }
    const migrated = (slotless.has(n.id) && l.role === "replica") || (n.role === "replica" && slotless.has(n.masterId ?? "") && l.role === "replica");
    if (migrated) continue;
    if (l.role !== n.role || (n.role === "replica" && l.masterId !== n.masterId)) out.push(`${n.addr} should be a ${n.role} but is a ${l.role}`);
  }
  for (const l of live.nodes) if (!model.nodes.has(l.id) && !looseNodes.has(l.id)) out.push(`${l.addr} is a member but should not be at this point`);
  const liveOwner: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  for (const n of live.nodes) if (n.role === "master") for (const x of expandRanges(n.slots)) liveOwner[x] = liveOwner[x] ?? n.id;
  let wrong = 0;
  let first = -1;
  for (let x = 0; x < SLOT_COUNT; x++) {
    if (looseSlots.has(x)) continue;
    if (liveOwner[x] !== model.owner[x]) {
      wrong++;
      if (first < 0) first = x;
    }
  }
  if (wrong > 0) out.push(`${wrong} slot(s) have another owner than the completed steps give (first: slot ${first})`);
  for (const n of live.nodes) {
    for (const m of [...n.migrating, ...n.importing]) if (!looseSlots.has(m.slot)) out.push(`slot ${m.slot} is open on ${n.addr}, but no step in doubt moves it`);
  }
  return out;
}
