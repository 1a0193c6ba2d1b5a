/**
 * The planner: desired spec x observed topology -> ordered steps. Pure: no I/O, no clock.
 *
 * Order, chosen so that every intermediate state is a valid cluster:
 *   1. finish slot moves left open by an interrupted run (toward the importing node)
 *   2. reset-node, only for nodes the spec lists in cluster.allowReset
 *   3. meet every new node (it is known by all before it receives a slot)
 *   4. failover where a spec master is live a replica
 *   5. add-slots for slots nobody owns
 *   6. replicate new and re-pointed replicas (they follow their master's data from the start)
 *   7. migrate-slot, one step per slot, grouped by source -> target
 *   8. replicate drained masters that become replicas
 *   9. forget-node for members the spec does not list (replicas first, then drained masters)
 * Each step is applied to a model as it is planned; a step the model rejects is a bug.
 */
import { PlanningError, assert } from "../errors.js";
import type { ObservedCluster, ObservedNode, Outsider } from "../observe/types.js";
import { applyStep, modelFromObserved, InvalidTransitionError, type Model } from "../plan/simulate.js";
import type { NodeRef, Step } from "../plan/types.js";
import type { ClusterSpec } from "../spec/types.js";
import { specNodes } from "../spec/nodes.js";
import { SLOT_COUNT, countSlots, formatRanges, toRanges } from "../slots.js";
import { distribute } from "./distribute.js";
import { viewDisagreements } from "../observe/disagreements.js";

type Want = { role: "master"; shard: number } | { role: "replica"; shard: number; master: string };

/** A step before it has its id. */
type Draft = Step extends infer S ? (S extends Step ? Omit<S, "id"> : never) : never;

export interface PlannerOutput {
  steps: Step[];
  /** Display-only remarks (e.g. "balanced within threshold"). */
  notes: string[];
}

export function planSteps(spec: ClusterSpec, observed: ObservedCluster): PlannerOutput {
  const problems: string[] = [];
  const notes: string[] = [];
  const byAddr = new Map<string, ObservedNode>(observed.nodes.map((n) => [n.addr, n]));
  const outsiderByAddr = new Map<string, Outsider>(observed.outsiders.map((x) => [x.addr, x]));
  const allowReset = new Set(spec.allowReset);

  const want = new Map<string, Want>();
  spec.shards.forEach((sh, i) => {
    want.set(sh.master, { role: "master", shard: i });
    for (const r of sh.replicas) want.set(r, { role: "replica", shard: i, master: sh.master });
  });

  // --- Which nodes can take part, and which must be reset or met. ---
  const ids = new Map<string, string>(); // addr -> id for every spec node
  const toReset: Outsider[] = [];
  const toMeet: Outsider[] = [];
  for (const [addr] of want) {
    const n = byAddr.get(addr);
    if (n) {
      ids.set(addr, n.id);
      if (!n.reachable) problems.push(`${addr} is a member but cannot be reached (${n.unreachableReason ?? "unreachable"}): bring it back, or drop it from the spec to remove it`);
      else if (n.flags.includes("fail")) problems.push(`${addr} is flagged as failed by the cluster: repair it before planning`);
      // A member is never reset; allowReset stays harmless once the node has joined.
      if (allowReset.has(addr)) notes.push(`${addr} is in cluster.allowReset but is already a member: it will not be reset`);
      continue;
    }
    const x = outsiderByAddr.get(addr);
    if (!x) {
      problems.push(`${addr} is in the spec but was not observed: plan against the live cluster, or take the snapshot with --spec so new nodes are probed`);
      continue;
    }
    if (x.state === "unreachable") {
      problems.push(`${addr} is not a member and cannot be reached (${x.detail ?? "no answer"}): start it, or correct the address`);
      continue;
    }
    ids.set(addr, x.id!);
    if (x.state === "empty") toMeet.push(x);
    else if (allowReset.has(addr)) {
      toReset.push(x);
      toMeet.push(x);
    } else {
      problems.push(
        `${addr} ${x.detail ?? x.state}: shardform never resets a node on its own. ` +
          `If its data may be lost, list it under cluster.allowReset and the plan will show a reset-node step`,
      );
    }
  }
  for (const n of observed.nodes) {
    if (want.has(n.addr)) continue;
    if (!n.reachable && countSlots(n.slots) > 0 && n.role === "master") {
      problems.push(`${n.addr} is to be removed but cannot be reached and owns slots ${formatRanges(n.slots)}: its keys cannot be moved; fail it over or bring it back first`);
    }
  }
  problems.push(...viewConflicts(observed));

  const anchor =
    spec.shards.map((s) => byAddr.get(s.master)).find((n) => n?.reachable) ?? observed.nodes.find((n) => n.reachable);
  if (!anchor) problems.push(`no reachable member to join new nodes through`);

  // --- Failovers: a spec master that is live a replica. ---
  const failovers: { replica: ObservedNode; master: ObservedNode }[] = [];
  for (const sh of spec.shards) {
    const n = byAddr.get(sh.master);
    if (!n || n.role !== "replica") continue;
    const cur = observed.nodes.find((m) => m.id === n.masterId);
    if (!cur) {
      problems.push(`${sh.master} is a replica of an unknown master ${n.masterId ?? "-"}: wait for the cluster to settle`);
      continue;
    }
    const curWant = want.get(cur.addr);
    if (curWant?.role === "master") {
      problems.push(
        `${sh.master} is a replica of ${cur.addr}, which the spec also keeps as a master: a replica can only become a master by taking over its own master's slots. ` +
          `Make ${cur.addr} a replica in the spec, or drop ${sh.master} from the spec and add it back later`,
      );
    } else if (!cur.reachable || cur.flags.includes("fail")) {
      problems.push(`${cur.addr}, the master of ${sh.master}, is down: Redis fails over on its own; wait and plan again`);
    } else failovers.push({ replica: n, master: cur });
  }
  if (problems.length > 0) throw new PlanningError(problems);

  // --- Build the steps against a model. ---
  const model = modelFromObserved(observed);
  const steps: Step[] = [];
  const ref = (id: string): NodeRef => {
    const n = model.nodes.get(id);
    if (n) return { id, addr: n.addr };
    const x = observed.outsiders.find((o) => o.id === id);
    assert(x, `unknown node id ${id}`);
    return { id, addr: x.addr };
  };
  const refAddr = (addr: string): NodeRef => ({ id: ids.get(addr)!, addr });
  const push = (d: Draft): void => {
    const step = { ...d, id: `${steps.length + 1}-${d.kind}` } as Step;
    try {
      applyStep(model, step);
    } catch (err) {
      if (err instanceof InvalidTransitionError) throw new Error(`Assertion failed: planner produced an invalid step: ${err.message} (this is a bug in shardform)`);
      throw err;
    }
    steps.push(step);
  };
  const keysPerSlot = new Map(observed.nodes.map((n) => [n.id, n.role === "master" && countSlots(n.slots) > 0 ? (n.keys ?? 0) / countSlots(n.slots) : 0]));
  // Key estimates per slot, rounded cumulatively per source so that totals stay accurate.
  const movedFrom = new Map<string, number>();
  const estimateKeys = (from: string): number => {
    const rate = keysPerSlot.get(from) ?? 0;
    const k = movedFrom.get(from) ?? 0;
    movedFrom.set(from, k + 1);
    return Math.round((k + 1) * rate) - Math.round(k * rate);
  };

  // 1. open slots
  for (const open of openSlots(observed, model)) {
    push({
      kind: "migrate-slot",
      slot: open.slot,
      from: ref(open.from),
      to: ref(open.to),
      estKeys: estimateKeys(open.from),
      reason: `finish the interrupted move of slot ${open.slot} (${open.state})`,
    });
  }
  // 2-3. reset and meet
  for (const x of toReset) {
    push({ kind: "reset-node", node: refAddr(x.addr), keys: x.keys ?? 0, destructive: true, reason: `${x.detail ?? x.state}; allowed by cluster.allowReset` });
  }
  for (const x of toMeet) {
    push({ kind: "meet", node: refAddr(x.addr), via: ref(anchor!.id), reason: "new node" });
  }
  // 4. failovers
  for (const f of failovers) {
    push({ kind: "failover", replica: ref(f.replica.id), master: ref(f.master.id), reason: `the spec makes ${f.replica.addr} the master` });
  }
  // 5. slot targets
  const dist = distribute(
    model.owner,
    spec.shards.map((sh) => ({ masterId: ids.get(sh.master)!, weight: sh.weight, ...(sh.slots ? { pinned: sh.slots } : {}) })),
    spec.threshold,
  );
  if (!dist.rebalanced && spec.shards.some((s) => !s.slots)) {
    notes.push(`slots are balanced within ${spec.threshold}% (worst deviation ${dist.imbalance.toFixed(1)}%): no slot moves for balance`);
  }
  const unowned = new Map<string, number[]>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (model.owner[s] === null) {
      const to = dist.owner[s]!;
      if (!unowned.has(to)) unowned.set(to, []);
      unowned.get(to)!.push(s);
    }
  }
  for (const sh of spec.shards) {
    const id = ids.get(sh.master)!;
    const slots = unowned.get(id);
    if (slots) push({ kind: "add-slots", node: ref(id), ranges: toRanges(slots), reason: "slots no node owns" });
  }
  const forgotten = new Set<string>();
  /** Forgets a member the spec does not list, after its own unlisted replicas. */
  const forget = (id: string): void => {
    if (forgotten.has(id)) return;
    for (const x of [...model.nodes.values()]) if (x.masterId === id && !want.has(x.addr)) forget(x.id);
    forgotten.add(id);
    push({ kind: "forget-node", node: ref(id), destructive: true, reason: "not in the spec" });
  };
  // 6. replicas that can be attached now: nodes without slots or replicas of their own
  const replicaSteps = (late: boolean): void => {
    for (const sh of spec.shards) {
      const masterId = ids.get(sh.master)!;
      for (const r of sh.replicas) {
        const id = ids.get(r)!;
        const cur = model.nodes.get(id)!;
        if (cur.role === "replica" && cur.masterId === masterId) continue;
        const busy = cur.role === "master" && (model.owner.includes(id) || [...model.nodes.values()].some((x) => x.masterId === id));
        if (busy !== late) continue;
        // A master about to become a replica first loses the replicas the spec drops.
        for (const x of [...model.nodes.values()]) if (x.masterId === id && !want.has(x.addr)) forget(x.id);
        push({
          kind: "replicate",
          replica: ref(id),
          master: ref(masterId),
          reason: cur.role === "master" ? (late ? "drained master becomes a replica" : "new replica") : `re-point from ${ref(cur.masterId!).addr}`,
        });
      }
    }
  };
  replicaSteps(false);
  // 7. migrations, grouped by source -> target, slots ascending
  const moves = new Map<string, number[]>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    const from = model.owner[s];
    const to = dist.owner[s];
    if (from !== null && from !== undefined && to !== undefined && to !== null && from !== to) {
      const k = `${from} ${to}`;
      if (!moves.has(k)) moves.set(k, []);
      moves.get(k)!.push(s);
    }
  }
  const pairs = [...moves.keys()].sort((a, b) => {
    const [fa, ta] = a.split(" ") as [string, string];
    const [fb, tb] = b.split(" ") as [string, string];
    return ref(fa).addr.localeCompare(ref(fb).addr) || ref(ta).addr.localeCompare(ref(tb).addr);
  });
  for (const k of pairs) {
    const [from, to] = k.split(" ") as [string, string];
    const drained = !want.has(ref(from).addr) || want.get(ref(from).addr)!.role !== "master";
    for (const slot of moves.get(k)!) {
      push({
        kind: "migrate-slot",
        slot,
        from: ref(from),
        to: ref(to),
        estKeys: estimateKeys(from),
        ...(drained ? { reason: "drain a master the spec removes or demotes" } : {}),
      });
    }
  }
  // 8. drained masters become replicas
  replicaSteps(true);
  // 9. forget members the spec does not list: replicas first, then masters
  const gone = [...model.nodes.values()].filter((n) => !want.has(n.addr));
  gone.sort((a, b) => (a.role === b.role ? a.addr.localeCompare(b.addr) : a.role === "replica" ? -1 : 1));
  for (const n of gone) forget(n.id);

  verifyEndState(spec, model, ids, dist.owner);
  return { steps, notes };
}

interface OpenSlot {
  slot: number;
  from: string;
  to: string;
  state: string;
}

/** Slots in MIGRATING/IMPORTING state. Each is finished toward the importing node. */
function openSlots(o: ObservedCluster, model: Model): OpenSlot[] {
  const bySlot = new Map<number, { from?: string; to?: string; importFrom?: string; parts: string[] }>();
  const entry = (slot: number) => {
    if (!bySlot.has(slot)) bySlot.set(slot, { parts: [] });
    return bySlot.get(slot)!;
  };
  for (const n of o.nodes) {
    for (const m of n.migrating) {
      const e = entry(m.slot);
      e.from = n.id;
      e.to ??= m.peerId;
      e.parts.push(`MIGRATING on ${n.addr}`);
    }
    for (const i of n.importing) {
      const e = entry(i.slot);
      e.to = n.id;
      e.importFrom = i.peerId;
      e.parts.push(`IMPORTING on ${n.addr}`);
    }
  }
  const out: OpenSlot[] = [];
  const problems: string[] = [];
  for (const [slot, e] of [...bySlot].sort((a, b) => a[0] - b[0])) {
    const from = e.from ?? e.importFrom ?? model.owner[slot] ?? undefined;
    const to = e.to;
    if (!from || !to || !model.nodes.has(from) || !model.nodes.has(to)) {
      problems.push(`slot ${slot} is open (${e.parts.join(", ")}) toward a node that is not a member: close it by hand with CLUSTER SETSLOT ${slot} STABLE on the nodes named`);
      continue;
    }
    if (from === to) {
      problems.push(`slot ${slot} is open (${e.parts.join(", ")}) with the same node on both sides: close it with CLUSTER SETSLOT ${slot} STABLE`);
      continue;
    }
    // Until the move is finished, the source is the owner (the target may claim it early).
    model.owner[slot] = from;
    out.push({ slot, from, to, state: e.parts.join(", ") });
  }
  if (problems.length > 0) throw new PlanningError(problems);
  return out;
}

/**
 * Members whose views disagree about roles or slot owners make any plan unsafe. Slots seen
 * differently are expected while a node has a slot open (an interrupted move, finished first).
 */
function viewConflicts(o: ObservedCluster): string[] {
  const open = new Set(o.nodes.filter((n) => n.migrating.length + n.importing.length > 0).map((n) => n.id));
  const byPair = new Map<string, { viewer: string; subject: string; role: boolean; slots: boolean }>();
  for (const d of viewDisagreements(o.nodes)) {
    if ((d.kind !== "role" && d.kind !== "slots") || d.viewer === null) continue;
    const key = `${d.viewer} ${d.subject.id}`;
    const pair = byPair.get(key) ?? { viewer: d.viewer, subject: d.subject.addr, role: false, slots: false };
    if (d.kind === "role") pair.role = true;
    else if (!open.has(d.subject.id)) pair.slots = true;
    byPair.set(key, pair);
  }
  const out: string[] = [];
  for (const p of byPair.values()) {
    if (!p.role && !p.slots) continue;
    out.push(`${p.viewer} and ${p.subject} disagree about ${p.subject}'s ${p.role ? "role" : "slots"}: the cluster has not settled; run \`shardform check\` and plan again when it reports no disagreement`);
  }
  return [...new Set(out)];
}

function verifyEndState(spec: ClusterSpec, model: Model, ids: Map<string, string>, owner: (string | null)[]): void {
  const members = new Set([...model.nodes.values()].map((n) => n.addr));
  const listed = new Set(specNodes(spec));
  assert(members.size === listed.size && [...listed].every((a) => members.has(a)), "end state has the members the spec lists");
  for (const sh of spec.shards) {
    const m = model.nodes.get(ids.get(sh.master)!)!;
    assert(m.role === "master", `${sh.master} ends as a master`);
    for (const r of sh.replicas) {
      const n = model.nodes.get(ids.get(r)!)!;
      assert(n.role === "replica" && n.masterId === m.id, `${r} ends as a replica of ${sh.master}`);
    }
  }
  for (let s = 0; s < SLOT_COUNT; s++) assert(model.owner[s] !== null && model.owner[s] === owner[s], `slot ${s} ends with its planned owner`);
}
