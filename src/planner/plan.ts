/**
 * The planner: desired spec x observed topology -> steps with their dependencies. Pure: no I/O, no clock.
 *
 * Rules, in the order they add steps, chosen so that every intermediate state is a valid cluster:
 *   1. finish slot moves left open by an interrupted run (rules/open-slots), and move the keys an
 *      earlier plan's moves left behind to their slot's owner (rules/strays)
 *   2-3. reset-node, only for nodes the spec lists in cluster.allowReset, then meet new nodes (rules/members)
 *   4. failovers: a spec master that is a replica now, or a new master taking over a demoted one (rules/roles)
 *   5. add-slots for slots nobody owns (rules/slots)
 *   6. replicate new and re-pointed replicas (rules/replicas, early)
 *   7. migrate-slot, grouped by source -> target (rules/slots)
 *   8. replicate drained masters that become replicas (rules/replicas, late)
 *   9. forget-node for members the spec does not list, replicas first (rules/removal)
 * Each step is checked against a model as it is added, and gets the ids of the earlier steps it
 * needs (planner/builder.ts); apply may run any step whose needs are done.
 */
import { forgetBlindSpots, type PastMove } from "../safety/rules.js";
import { PlanningError, assert } from "../errors.js";
import type { ObservedCluster, Outsider } from "../observe/types.js";
import { unsettled } from "../observe/disagreements.js";
import { modelFromObserved, nodesActedOn } from "../plan/simulate.js";
import { removedMasters } from "../plan/summary.js";
import { hostWarnings } from "../plan/hosts.js";
import type { BalanceReport, NodeRef, Step } from "../plan/types.js";
import type { ClusterSpec } from "../spec/types.js";
import { SLOT_COUNT, formatRanges } from "../slots.js";
import { StepBuilder } from "./builder.js";
import type { PlanContext, ShardTargets, Want } from "./context.js";
import { resolveIdentity } from "./identity.js";
import { addMembers } from "./rules/members.js";
import { finishOpenSlots } from "./rules/open-slots.js";
import { repairStrayKeys } from "./rules/strays.js";
import { chooseMigration, type Migration } from "./migration.js";
import { attachReplicas } from "./rules/replicas.js";
import { removeUnlisted } from "./rules/removal.js";
import { fixRoles } from "./rules/roles.js";
import { addUnownedSlots, moveSlots, targetOwners } from "./rules/slots.js";

export interface PlanOptions {
  /** Permit a plan that removes half or more of the masters that own slots. */
  allowMassRemoval?: boolean;
  /** Which protocol slot moves use (default auto: the server's own migration where both ends have it). */
  migration?: Migration;
  /** Slot moves of earlier plans (`--history`): keys one of them left behind are moved to their owner (safety rule 9). */
  history?: readonly PastMove[];
}

export interface PlannerOutput {
  steps: Step[];
  /** Display-only remarks (e.g. "balanced within threshold"). */
  notes: string[];
  /** Display-only things a reviewer should know. */
  warnings: string[];
  /** When the spec balances by keys or memory: the measurement, and each master before and after. */
  balance?: BalanceReport;
}

export function planSteps(spec: ClusterSpec, observed: ObservedCluster, opts: PlanOptions = {}): PlannerOutput {
  const identity = resolveIdentity(spec, observed);
  const problems = [...identity.problems];
  const notes = [...identity.notes];
  const warnings: string[] = [];
  const members = new Map(observed.nodes.map((n) => [n.id, n]));
  const outsiderById = new Map(observed.outsiders.filter((x) => x.id).map((x) => [x.id!, x]));
  const idOf = identity.idOf;

  // --- What the spec wants of each node id. ---
  const want = new Map<string, Want>();
  const shards: ShardTargets[] = [];
  spec.shards.forEach((sh, i) => {
    const masterId = idOf.get(sh.master);
    const replicaIds = sh.replicas.map((r) => idOf.get(r)).filter((x): x is string => x !== undefined);
    if (masterId) {
      want.set(masterId, { role: "master", shard: i });
      for (const r of replicaIds) want.set(r, { role: "replica", shard: i, masterId });
      shards.push({ masterId, replicaIds, weight: sh.weight, ...(sh.slots ? { pinned: sh.slots } : {}) });
    }
  });

  // --- Which nodes can take part, and which must be reset or met. ---
  const toReset: Outsider[] = [];
  const toMeet: Outsider[] = [];
  const allowReset = new Set(spec.allowReset.map((a) => idOf.get(a)).filter(Boolean));
  for (const addr of spec.shards.flatMap((s) => [s.master, ...s.replicas])) {
    const id = idOf.get(addr);
    const n = id === undefined ? undefined : members.get(id);
    if (n) {
      if (n.flags.includes("fail") && n.role === "master" && n.slots.length > 0) {
        problems.push(`${n.addr} is flagged as failed by the cluster and owns slots: wait for Redis to fail it over (or bring it back), then plan again`);
      }
      // A member is never reset; allowReset stays harmless once the node has joined.
      if (allowReset.has(n.id)) notes.push(`${addr} is in cluster.allowReset but is already a member: it will not be reset`);
      continue;
    }
    const x = (id && outsiderById.get(id)) || observed.outsiders.find((o) => o.addr === addr);
    if (!x) {
      problems.push(`${addr} is in the spec but was not observed: plan against the live cluster, or take the snapshot with --spec so that new nodes are probed`);
    } else if (x.state === "unreachable") {
      problems.push(`${addr} is not a member and cannot be reached (${x.detail ?? "no answer"}): start it, or correct the address`);
    } else if (x.state === "empty") toMeet.push(x);
    else if (allowReset.has(x.id)) {
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
    if (!want.has(n.id) && !n.reachable && n.role === "master" && n.slots.length > 0) {
      problems.push(`${n.addr} is to be removed but cannot be reached and owns slots ${formatRanges(n.slots)}: its keys cannot be moved; fail it over or bring it back first`);
    }
  }
  for (const addr of spec.protect) if (!idOf.has(addr)) problems.push(`cluster.protect lists ${addr}, which is not a member: remove it from protect, or correct the address`);
  // Seeds of another cluster than the spec's nodes: one problem, not one per node.
  const specIds = [...idOf.values()];
  if (specIds.length > 0 && !specIds.some((id) => members.has(id)) && observed.outsiders.some((x) => x.state === "other-cluster" && specIds.includes(x.id ?? ""))) {
    const names = observed.nodes.slice(0, 3).map((n) => n.addr);
    throw new PlanningError([
      `the seeds reach a cluster of ${observed.nodes.length} node(s) (${names.join(", ")}${observed.nodes.length > 3 ? ", ..." : ""}) of which none is in the spec, ` +
        `while the spec's nodes belong to another cluster: check cluster.seeds (or --seed) — they should name members of the spec's cluster`,
    ]);
  }
  problems.push(...unsettled(observed.nodes).map((u) => `${u}: the cluster has not settled; run \`shardform check\` and plan again when it reports no disagreement (plan waits up to --settle-timeout for this)`));
  if (observed.applies?.length) {
    for (const h of observed.applies) warnings.push(`an apply is in progress on this cluster: pid ${h.pid} on ${h.host}, started ${h.since}; this plan may be stale before it is applied`);
  }
  if (problems.length > 0) throw new PlanningError(problems);

  // --- Build the steps against a model. ---
  const model = modelFromObserved(observed);
  const refOf = (id: string): NodeRef => {
    const n = model.nodes.get(id) ?? members.get(id);
    if (n) return { id, addr: n.addr };
    const x = outsiderById.get(id);
    assert(x, `unknown node id ${id}`);
    return { id, addr: x.addr };
  };
  const ctx: PlanContext = { spec, observed, members, idOf, want, shards, b: new StepBuilder(model, refOf), notes, problems, slotsEstimated: new Map(), warnings };
  const receiving = finishOpenSlots(ctx);
  repairStrayKeys(ctx, receiving, opts.history ?? []);
  addMembers(ctx, toReset, toMeet);
  fixRoles(ctx);
  if (problems.length > 0) throw new PlanningError(problems);
  const target = targetOwners(ctx);
  if (problems.length > 0) throw new PlanningError(problems);
  addUnownedSlots(ctx, target);
  attachReplicas(ctx, false);
  moveSlots(ctx, target);
  attachReplicas(ctx, true);
  removeUnlisted(ctx);
  const steps = ctx.b.steps;
  problems.push(...chooseMigration(steps, observed, opts.migration ?? "auto"));

  // --- Refusals that depend on the steps. ---
  const touched = new Set<string>();
  for (const s of steps) for (const r of nodesActedOn(s)) touched.add(r.id);
  for (const n of observed.nodes) {
    if (n.reachable) continue;
    if (touched.has(n.id)) problems.push(`${n.addr} cannot be reached (${n.unreachableReason ?? "unreachable"}) and the plan needs it: bring it back, or drop it from the spec to remove it`);
    else if (want.has(n.id)) warnings.push(`${n.addr} is down (${n.unreachableReason ?? "unreachable"}); this plan does not touch it, and apply will not wait for it`);
  }
  const start = modelFromObserved(observed);
  const removed = removedMasters(start, steps, model);
  const owners = new Set(start.owner.filter((x): x is string => x !== null));
  const protectedIds = new Map(spec.protect.map((a) => [idOf.get(a)!, a]));
  for (const [id, addr] of protectedIds) {
    if (!model.nodes.has(id) && start.nodes.has(id)) problems.push(`the plan would remove ${addr}, which cluster.protect protects: add it back to a shard, or take it out of protect if removing it is intended`);
    else if (removed.includes(id)) problems.push(`the plan would drain every slot of ${addr}, which cluster.protect protects: keep it a master in the spec, or take it out of protect`);
  }
  if (removed.length > 0 && removed.length * 2 >= owners.size && !opts.allowMassRemoval) {
    problems.push(
      `this plan removes ${removed.length} of the ${owners.size} masters that own slots (${removed.map((id) => refOf(id).addr).join(", ")}), ` +
        `moving all their slots elsewhere. If the spec is right (not a wrong file or a bad merge), plan again with --allow-mass-removal; the permission is recorded in the plan`,
    );
  }
  if (problems.length > 0) throw new PlanningError(problems);
  verifyEndState(ctx, target);
  warnings.push(...forgetBlindSpots(steps.flatMap((s) => (s.kind === "forget-node" ? [s.node] : [])), observed.nodes));
  warnings.push(...hostWarnings([...model.nodes.values()]));
  if (steps.length > 0) warnings.push(...noReplicaWarnings(ctx));
  return { steps, notes, warnings, ...(ctx.balance ? { balance: ctx.balance } : {}) };
}

/** Masters that end the plan with no replica: losing one loses its slots' keys until it is back. */
function noReplicaWarnings(ctx: PlanContext): string[] {
  const bare = ctx.shards.filter((sh) => sh.replicaIds.length === 0 && ctx.b.model.owner.includes(sh.masterId)).map((sh) => ctx.b.ref(sh.masterId).addr);
  if (bare.length === 0) return [];
  return [`${bare.length} master(s) end this plan without a replica (${bare.join(", ")}): if one fails, its slots are down and its keys are lost unless it comes back with its data; add replicas to their shards in the spec`];
}

function verifyEndState(ctx: PlanContext, owner: (string | null)[]): void {
  const model = ctx.b.model;
  const members = new Set(model.nodes.keys());
  assert(members.size === ctx.want.size && [...ctx.want.keys()].every((id) => members.has(id)), "end state has the members the spec lists");
  for (const sh of ctx.shards) {
    const m = model.nodes.get(sh.masterId)!;
    assert(m.role === "master", `${m.addr} ends as a master`);
    for (const r of sh.replicaIds) {
      const n = model.nodes.get(r)!;
      assert(n.role === "replica" && n.masterId === m.id, `${n.addr} ends as a replica of ${m.addr}`);
    }
  }
  for (let s = 0; s < SLOT_COUNT; s++) assert(model.owner[s] !== null && model.owner[s] === owner[s], `slot ${s} ends with its planned owner`);
}
