/**
 * After the last step: is the cluster in the plan's end state? Members, roles, slot owners (every
 * slot covered once), no open slot, no keys stranded in slots their node does not own, views that
 * agree. A member that is down and that no step acts on is a warning, not a difference. A shard the
 * cluster failed over during apply (safety rule 4) is reported apart: its data is all served; so is a
 * shard a failover split in two masters (safety rule 9), which the next plan of the spec makes whole. Pure.
 */
import { viewDisagreements } from "../observe/disagreements.js";
import type { ObservedCluster } from "../observe/types.js";
import { nodesActedOn, simulate } from "../plan/simulate.js";
import type { Plan } from "../plan/types.js";
import { SLOT_COUNT, expandRanges, formatRanges, toRanges } from "../slots.js";
import { forgetBlindSpots, planReplicas, promotedFrom, shardSwaps, withSwaps } from "../safety/rules.js";

export interface EndStateReport {
  differences: string[];
  warnings: string[];
  /** Shards the cluster failed over during apply (safety rule 4): every slot served, by another node of the same shard. */
  failovers: string[];
}

export function endStateDifferences(plan: Plan, live: ObservedCluster): EndStateReport {
  const planned = simulate(plan.observed.snapshot, plan.steps);
  const swaps = shardSwaps(planned.nodes, live.nodes, planReplicas(plan.observed.snapshot, plan.steps));
  const expected = withSwaps(planned.nodes, planned.owner, swaps);
  const liveById = new Map(live.nodes.map((n) => [n.id, n]));
  const acted = new Set(plan.steps.flatMap((s) => nodesActedOn(s).map((r) => r.id)));
  const name = (id: string | null): string => (id === null ? "-" : (liveById.get(id)?.addr ?? expected.nodes.get(id)?.addr ?? id.slice(0, 8)));
  const role = (r: string, m: string | null): string => (r === "master" ? "a master" : `a replica of ${name(m)}`);
  const differences: string[] = [];
  const warnings: string[] = [];
  // Shards split by a failover (safety rule 9, staleCopies): both halves are named with the failovers.
  const splits = splitShards(expected.nodes, live);
  const inSplit = new Set([...splits].flatMap(([r, t]) => [r, t]));
  for (const n of expected.nodes.values()) {
    const l = liveById.get(n.id);
    if (!l) {
      differences.push(`${n.addr} should be a member but is not`);
      continue;
    }
    if (!l.reachable) {
      const msg = `${l.addr} is down (${l.unreachableReason ?? "unreachable"})`;
      if (swaps.has(n.id)) {
        // Its shard is served by the replica the cluster promoted: named with the failovers.
        warnings.push(`${msg}; the cluster failed its shard over to ${name(swaps.get(n.id)!)}. Bring it back; it rejoins as a replica`);
        continue;
      }
      if (acted.has(n.id)) differences.push(`${msg}, and the plan acted on it`);
      else warnings.push(`${msg}; no step of this plan acts on it. Bring it back; \`shardform check\` reports it until then`);
    }
    if (role(n.role, n.masterId) !== role(l.role, l.masterId) && !inSplit.has(n.id)) differences.push(`${l.addr} should be ${role(n.role, n.masterId)} but is ${role(l.role, l.masterId)}`);
  }
  for (const l of live.nodes) if (!expected.nodes.has(l.id)) differences.push(`${l.addr} is a member but the plan removes it (or never added it)`);
  const claims: string[][] = Array.from({ length: SLOT_COUNT }, () => []);
  for (const n of live.nodes) if (n.role === "master") for (const x of expandRanges(n.slots)) claims[x]!.push(n.id);
  const byProblem = new Map<string, number[]>();
  for (let x = 0; x < SLOT_COUNT; x++) {
    const c = claims[x]!;
    const want = expected.owner[x] ?? null;
    let problem: string | null = null;
    if (c.length > 1) problem = `claimed by ${c.map(name).join(" and ")}`;
    else if ((c[0] ?? null) !== want && !(c[0] && want && splitPair(splits, c[0], want))) problem = `owned by ${c[0] ? name(c[0]) : "no master"}, the plan gives ${want ? name(want) : "no master"}`;
    if (problem) byProblem.set(problem, [...(byProblem.get(problem) ?? []), x]);
  }
  for (const [problem, slots] of byProblem) differences.push(`slots ${formatRanges(toRanges(slots))} (${slots.length}) are ${problem}`);
  for (const n of live.nodes) {
    for (const m of n.migrating) differences.push(`slot ${m.slot} is still MIGRATING on ${n.addr}`);
    for (const m of n.importing) differences.push(`slot ${m.slot} is still IMPORTING on ${n.addr}`);
    for (const s of n.strayKeys ?? []) {
      const owner = claims[s.slot]?.[0];
      if (s.db === undefined && owner && splits.get(n.id) === owner) continue; // the split's stale copies, named below
      differences.push(`${n.addr} holds ${s.keys} key(s) of slot ${s.slot}${s.db ? ` in database ${s.db}` : ""}, which it does not own`);
    }
  }
  const downIds = new Set(live.nodes.filter((n) => !n.reachable).map((n) => n.id));
  for (const d of viewDisagreements(live.nodes)) {
    if (d.kind === "unreachable") continue;
    if (downIds.has(d.subject.id)) continue; // how members see a dead node is covered by the warning above
    if (d.kind === "role" || d.kind === "slots" || d.kind === "unknown-member" || d.kind === "stranger") differences.push(d.text);
  }
  // A member down at the end may still list the nodes the plan removed, and bring them back (safety rule 5).
  differences.push(...forgetBlindSpots(plan.steps.flatMap((s) => (s.kind === "forget-node" ? [s.node] : [])), live.nodes));
  const failovers = [...swaps].map(([m, r]) =>
    liveById.get(m)?.reachable === false
      ? `${name(m)} is down, and the cluster failed its shard over to ${name(r)} during apply`
      : `${name(m)} is now a replica of ${name(r)}: the cluster failed that shard over during apply`,
  );
  for (const [r, t] of splits) {
    const kept = live.nodes.find((n) => n.id === t)?.slots ?? [];
    const stale = (live.nodes.find((n) => n.id === r)?.strayKeys ?? []).filter((x) => x.db === undefined).reduce((k, x) => k + x.keys, 0);
    failovers.push(
      `${name(r)} was promoted in place of ${name(t)} with the slots it knew of, while ${name(t)} kept slots ${formatRanges(kept)}: the cluster split that shard during apply` +
        (stale > 0 ? ` (${name(r)} holds ${stale} stale copies of their keys, which the next plan deletes)` : ""),
    );
  }
  return { differences, warnings, failovers };
}

/**
 * Promoted replica -> the master it was promoted from, for the shards of the plan's end state whose two
 * halves are masters now (one's previous replication id is the other's current one).
 */
function splitShards(expected: ReadonlyMap<string, { role: string; masterId: string | null }>, live: ObservedCluster): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of live.nodes) {
    if (r.role !== "master") continue;
    const t = live.nodes.find((n) => n !== r && n.role === "master" && n.slots.length > 0 && promotedFrom(r, n));
    if (!t) continue;
    const er = expected.get(r.id);
    const et = expected.get(t.id);
    if ((er?.role === "replica" && er.masterId === t.id) || (et?.role === "replica" && et.masterId === r.id)) out.set(r.id, t.id);
  }
  return out;
}

function splitPair(splits: ReadonlyMap<string, string>, a: string, b: string): boolean {
  return splits.get(a) === b || splits.get(b) === a;
}
