/**
 * A pure model of the cluster and the effect of each step on it. The planner uses it to
 * check that every intermediate state is valid; renderers use it to draw the topology after.
 */
import type { ObservedCluster, Role } from "../observe/types.js";
import { SLOT_COUNT, toRanges, type SlotRange } from "../slots.js";
import type { NodeRef, Step } from "./types.js";

export interface ModelNode {
  id: string;
  addr: string;
  role: Role;
  masterId: string | null;
}

export interface Model {
  nodes: Map<string, ModelNode>;
  /** Owner id of each slot, or null. */
  owner: (string | null)[];
}

export class InvalidTransitionError extends Error {}

export function modelFromObserved(o: ObservedCluster): Model {
  const nodes = new Map<string, ModelNode>();
  const owner: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  for (const n of o.nodes) {
    nodes.set(n.id, { id: n.id, addr: n.addr, role: n.role, masterId: n.masterId });
    if (n.role === "master") for (const [a, b] of n.slots) for (let s = a; s <= b; s++) owner[s] = n.id;
  }
  return { nodes, owner };
}

export function cloneModel(m: Model): Model {
  return { nodes: new Map([...m.nodes].map(([k, v]) => [k, { ...v }])), owner: [...m.owner] };
}

export function slotsOf(m: Model, id: string): SlotRange[] {
  const out: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (m.owner[s] === id) out.push(s);
  return toRanges(out);
}

function member(m: Model, ref: NodeRef, step: Step): ModelNode {
  const n = m.nodes.get(ref.id);
  if (!n) throw new InvalidTransitionError(`step ${step.id}: ${ref.addr} is not a member at this point`);
  return n;
}

function ownsAny(m: Model, id: string): boolean {
  return m.owner.includes(id);
}

/** Applies one step to the model, or throws InvalidTransitionError when it would break the cluster. */
export function applyStep(m: Model, step: Step): void {
  switch (step.kind) {
    case "reset-node":
      if (m.nodes.has(step.node.id)) throw new InvalidTransitionError(`step ${step.id}: ${step.node.addr} is a member; remove it before resetting it`);
      return;
    case "meet":
      if (m.nodes.has(step.node.id)) throw new InvalidTransitionError(`step ${step.id}: ${step.node.addr} is already a member`);
      member(m, step.via, step);
      m.nodes.set(step.node.id, { id: step.node.id, addr: step.node.addr, role: "master", masterId: null });
      return;
    case "add-slots": {
      const n = member(m, step.node, step);
      if (n.role !== "master") throw new InvalidTransitionError(`step ${step.id}: ${n.addr} is a replica and cannot own slots`);
      for (const [a, b] of step.ranges)
        for (let s = a; s <= b; s++) {
          if (m.owner[s] !== null) throw new InvalidTransitionError(`step ${step.id}: slot ${s} already has an owner`);
          m.owner[s] = n.id;
        }
      return;
    }
    case "migrate-slot": {
      const from = member(m, step.from, step);
      const to = member(m, step.to, step);
      if (m.owner[step.slot] !== from.id) throw new InvalidTransitionError(`step ${step.id}: slot ${step.slot} is not owned by ${from.addr}`);
      if (to.role !== "master") throw new InvalidTransitionError(`step ${step.id}: target ${to.addr} is a replica`);
      m.owner[step.slot] = to.id;
      return;
    }
    case "replicate": {
      const r = member(m, step.replica, step);
      const master = member(m, step.master, step);
      if (master.role !== "master") throw new InvalidTransitionError(`step ${step.id}: ${master.addr} is not a master`);
      if (r.id === master.id) throw new InvalidTransitionError(`step ${step.id}: a node cannot replicate itself`);
      if (r.role === "master" && ownsAny(m, r.id)) throw new InvalidTransitionError(`step ${step.id}: ${r.addr} still owns slots`);
      if (r.role === "master" && [...m.nodes.values()].some((x) => x.masterId === r.id))
        throw new InvalidTransitionError(`step ${step.id}: ${r.addr} still has replicas of its own`);
      r.role = "replica";
      r.masterId = master.id;
      return;
    }
    case "failover": {
      const r = member(m, step.replica, step);
      const old = member(m, step.master, step);
      if (r.role !== "replica" || r.masterId !== old.id) throw new InvalidTransitionError(`step ${step.id}: ${r.addr} is not a replica of ${old.addr}`);
      for (let s = 0; s < SLOT_COUNT; s++) if (m.owner[s] === old.id) m.owner[s] = r.id;
      for (const x of m.nodes.values()) if (x.role === "replica" && x.masterId === old.id) x.masterId = r.id;
      r.role = "master";
      r.masterId = null;
      old.role = "replica";
      old.masterId = r.id;
      return;
    }
    case "forget-node": {
      const n = member(m, step.node, step);
      if (ownsAny(m, n.id)) throw new InvalidTransitionError(`step ${step.id}: ${n.addr} still owns slots`);
      if ([...m.nodes.values()].some((x) => x.masterId === n.id && x.id !== n.id))
        throw new InvalidTransitionError(`step ${step.id}: ${n.addr} still has replicas`);
      m.nodes.delete(n.id);
      return;
    }
  }
}

export function simulate(o: ObservedCluster, steps: readonly Step[]): Model {
  const m = modelFromObserved(o);
  for (const s of steps) applyStep(m, s);
  return m;
}
