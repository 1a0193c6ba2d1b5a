/**
 * A pure model of the cluster and the effect of each step on it. The planner uses it to check that
 * every intermediate state is valid and to derive the steps' dependencies; apply uses it for the
 * state a set of done steps implies and for the end state; renderers draw the topology after.
 */
import type { ObservedCluster, Role } from "../observe/types.js";
import { SLOT_COUNT, expandRanges, toRanges, type SlotRange } from "../slots.js";
import type { NodeRef, Step } from "./types.js";
import { openMoves } from "./open-slots.js";

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
  /** How many slots each node owns (kept with `owner` by applyStep). */
  slotCount: Map<string, number>;
}

export class InvalidTransitionError extends Error {}

export function modelFromObserved(o: ObservedCluster): Model {
  const nodes = new Map<string, ModelNode>();
  const owner: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  for (const n of o.nodes) {
    nodes.set(n.id, { id: n.id, addr: n.addr, role: n.role, masterId: n.masterId });
    if (n.role === "master") for (const [a, b] of n.slots) for (let s = a; s <= b; s++) owner[s] = n.id;
  }
  // Until an interrupted move is finished, its source owns the slot (the target may claim it early).
  for (const m of openMoves(o)) if (m.from) owner[m.slot] = m.from;
  const slotCount = new Map<string, number>();
  for (const id of owner) if (id !== null) slotCount.set(id, (slotCount.get(id) ?? 0) + 1);
  return { nodes, owner, slotCount };
}

export function slotsOf(m: Model, id: string): SlotRange[] {
  const out: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (m.owner[s] === id) out.push(s);
  return toRanges(out);
}

export function replicasOf(m: Pick<Model, "nodes">, id: string): ModelNode[] {
  return [...m.nodes.values()].filter((x) => x.masterId === id && x.id !== id);
}

function member(m: Model, ref: NodeRef, step: Step): ModelNode {
  const n = m.nodes.get(ref.id);
  if (!n) throw new InvalidTransitionError(`step ${step.id}: ${ref.addr} is not a member at this point`);
  return n;
}

function ownsAny(m: Model, id: string): boolean {
  return (m.slotCount.get(id) ?? 0) > 0;
}

/** Gives `slot` to `id` (or to nobody), keeping the slot counts. */
function setOwner(m: Model, slot: number, id: string | null): void {
  const was = m.owner[slot] ?? null;
  if (was === id) return;
  if (was !== null) m.slotCount.set(was, (m.slotCount.get(was) ?? 0) - 1);
  if (id !== null) m.slotCount.set(id, (m.slotCount.get(id) ?? 0) + 1);
  m.owner[slot] = id;
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
          setOwner(m, s, n.id);
        }
      return;
    }
    case "migrate-slot": {
      const from = member(m, step.from, step);
      const to = member(m, step.to, step);
      if (m.owner[step.slot] !== from.id) throw new InvalidTransitionError(`step ${step.id}: slot ${step.slot} is not owned by ${from.addr}`);
      if (to.role !== "master") throw new InvalidTransitionError(`step ${step.id}: target ${to.addr} is a replica`);
      setOwner(m, step.slot, to.id);
      return;
    }
    case "replicate": {
      const r = member(m, step.replica, step);
      const master = member(m, step.master, step);
      if (master.role !== "master") throw new InvalidTransitionError(`step ${step.id}: ${master.addr} is not a master`);
      if (r.id === master.id) throw new InvalidTransitionError(`step ${step.id}: a node cannot replicate itself`);
      if (r.role === "master" && ownsAny(m, r.id)) throw new InvalidTransitionError(`step ${step.id}: ${r.addr} still owns slots`);
      if (r.role === "master" && replicasOf(m, r.id).length > 0) throw new InvalidTransitionError(`step ${step.id}: ${r.addr} still has replicas of its own`);
      r.role = "replica";
      r.masterId = master.id;
      return;
    }
    case "failover": {
      const r = member(m, step.replica, step);
      const old = member(m, step.master, step);
      if (r.role !== "replica" || r.masterId !== old.id) throw new InvalidTransitionError(`step ${step.id}: ${r.addr} is not a replica of ${old.addr}`);
      for (let s = 0; s < SLOT_COUNT; s++) if (m.owner[s] === old.id) setOwner(m, s, r.id);
      for (const x of m.nodes.values()) if (x.role === "replica" && x.masterId === old.id) x.masterId = r.id;
      r.role = "master";
      r.masterId = null;
      old.role = "replica";
      old.masterId = r.id;
      return;
    }
    case "move-stray-keys": {
      const from = member(m, step.from, step);
      const to = member(m, step.to, step);
      if (from.id === to.id) throw new InvalidTransitionError(`step ${step.id}: ${from.addr} owns slot ${step.slot}; its keys are not stray`);
      if (m.owner[step.slot] !== to.id) throw new InvalidTransitionError(`step ${step.id}: slot ${step.slot} is not owned by ${to.addr}`);
      if (from.role !== "master" || to.role !== "master") throw new InvalidTransitionError(`step ${step.id}: stray keys move between masters`);
      return;
    }
    case "forget-node": {
      const n = member(m, step.node, step);
      if (ownsAny(m, n.id)) throw new InvalidTransitionError(`step ${step.id}: ${n.addr} still owns slots`);
      if (replicasOf(m, n.id).length > 0) throw new InvalidTransitionError(`step ${step.id}: ${n.addr} still has replicas`);
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

/**
 * What a step reads and writes, as resource names, in the model as it stands just before the step:
 * "node:<id>" (role, master, membership), "replicas:<id>" (the set of a master's replicas),
 * "slot:<n>" (the owner of a slot), "strays:<id>" (the keys a master holds of slots it does not own,
 * which it keeps only while it owns a slot). A step that writes a resource must come after every earlier
 * step that reads or writes it; a step that reads one, after the last earlier step that wrote it.
 */
export function effects(m: Model, step: Step): { reads: string[]; writes: string[] } {
  const node = (id: string): string => `node:${id}`;
  const replicas = (id: string): string => `replicas:${id}`;
  const slot = (s: number): string => `slot:${s}`;
  const strays = (id: string): string => `strays:${id}`;
  switch (step.kind) {
    case "reset-node":
      return { reads: [], writes: [node(step.node.id)] };
    case "meet":
      return { reads: [node(step.via.id)], writes: [node(step.node.id)] };
    case "add-slots":
      return { reads: [node(step.node.id)], writes: expandRanges(step.ranges).map(slot) };
    case "migrate-slot":
      // Keys move into a shard only once the plan's new replicas of its master are in sync: a replica
      // still in its first sync (offset 0) may be promoted if the master stalls, and every key moved
      // into the master so far would go with it. A move that takes the source's last slot makes Redis
      // turn the source into a replica of the target (replica migration), which flushes its data: it
      // comes after the steps that move stray keys off the source.
      return {
        reads: [node(step.from.id), node(step.to.id), replicas(step.to.id)],
        writes: [slot(step.slot), ...(m.owner[step.slot] === step.from.id && m.slotCount.get(step.from.id) === 1 ? [strays(step.from.id)] : [])],
      };
    case "replicate": {
      const old = m.nodes.get(step.replica.id)?.masterId;
      return { reads: [node(step.master.id), replicas(step.replica.id)], writes: [node(step.replica.id), replicas(step.master.id), ...(old ? [replicas(old)] : [])] };
    }
    case "failover": {
      const owned: string[] = [];
      for (let s = 0; s < SLOT_COUNT; s++) if (m.owner[s] === step.master.id) owned.push(slot(s));
      const followers = replicasOf(m, step.master.id).map((x) => node(x.id));
      return { reads: [], writes: [node(step.replica.id), node(step.master.id), replicas(step.master.id), replicas(step.replica.id), ...followers, ...owned] };
    }
    case "move-stray-keys":
      // Before anything else moves the slot or changes either node, or empties the holder of slots.
      return { reads: [node(step.from.id), node(step.to.id), strays(step.from.id)], writes: [slot(step.slot)] };
    case "forget-node": {
      const master = m.nodes.get(step.node.id)?.masterId;
      return { reads: [replicas(step.node.id)], writes: [node(step.node.id), ...(master ? [replicas(master)] : [])] };
    }
  }
}

/** The nodes a step acts on (a forget-node acts on the remaining members, not on the node it removes). */
export function nodesActedOn(s: Step): NodeRef[] {
  switch (s.kind) {
    case "reset-node":
    case "add-slots":
      return [s.node];
    case "meet":
      return [s.node, s.via];
    case "replicate":
    case "failover":
      return [s.replica, s.master];
    case "migrate-slot":
    case "move-stray-keys":
      return [s.from, s.to];
    case "forget-node":
      return [];
  }
}

