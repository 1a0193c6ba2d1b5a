/**
 * Slots left open (MIGRATING/IMPORTING) by an interrupted move, and the move that finishes each:
 * toward the importing master. When a failover happened meanwhile, the side that became a replica is
 * replaced by the master that now holds its data. Pure; shared by the planner and the model.
 */
import type { ObservedCluster, ObservedNode } from "../observe/types.js";
import { dataHolder } from "../safety/rules.js";

export interface OpenMove {
  slot: number;
  /** Where the keys are moved from and to; absent when the move cannot be finished (then `problem` says why). */
  from?: string;
  to?: string;
  /** "MIGRATING on A, IMPORTING on B" */
  state: string;
  problem?: string;
}

export function openMoves(o: ObservedCluster): OpenMove[] {
  if (!o.nodes.some((n) => n.migrating.length > 0 || n.importing.length > 0)) return [];
  const byId = new Map(o.nodes.map((n) => [n.id, n]));
  const holder = (id: string | undefined): ObservedNode | undefined => dataHolder(id, byId);
  /** The masters that claim a slot. */
  const claimsOf = (slot: number): ObservedNode[] => o.nodes.filter((n) => n.role === "master" && n.slots.some(([a, b]) => slot >= a && slot <= b));
  const bySlot = new Map<number, { migrating?: ObservedNode; toward?: string; importing?: ObservedNode; from?: string; parts: string[] }>();
  const entry = (slot: number) => {
    let e = bySlot.get(slot);
    if (!e) bySlot.set(slot, (e = { parts: [] }));
    return e;
  };
  for (const n of o.nodes) {
    for (const m of n.migrating) {
      const e = entry(m.slot);
      e.migrating = n;
      e.toward = m.peerId;
      e.parts.push(`MIGRATING on ${n.addr}`);
    }
    for (const i of n.importing) {
      const e = entry(i.slot);
      e.importing = n;
      e.from = i.peerId;
      e.parts.push(`IMPORTING on ${n.addr}`);
    }
  }
  const out: OpenMove[] = [];
  for (const [slot, e] of [...bySlot].sort((a, b) => a[0] - b[0])) {
    const state = e.parts.join(", ");
    const owners = claimsOf(slot);
    // The source: the master that is migrating it, else the one holding the importer's peer's data, else its owner.
    const from = holder(e.migrating?.id) ?? holder(e.from) ?? (owners.length === 1 ? owners[0] : undefined);
    const to = holder(e.importing?.id) ?? holder(e.toward);
    if (!from || !to) {
      out.push({ slot, state, problem: `slot ${slot} is open (${state}) toward a node that is not a member: close it by hand with CLUSTER SETSLOT ${slot} STABLE on the nodes named, then plan again` });
    } else if (from.id === to.id) {
      out.push({ slot, state, problem: `slot ${slot} is open (${state}) with ${from.addr} on both sides: close it with CLUSTER SETSLOT ${slot} STABLE on those nodes, then plan again` });
    } else out.push({ slot, from: from.id, to: to.id, state });
  }
  return out;
}
