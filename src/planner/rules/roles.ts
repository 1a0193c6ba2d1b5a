/**
 * Rule 4: spec masters that are not masters with slots now.
 *  - A spec master that is a replica of a master the spec demotes takes over by failover (this also
 *    undoes a failover Redis made on its own). One that follows another spec master (Redis made a
 *    demoted master follow a node that took its slots) while a replica of its shard serves that shard
 *    re-points to that replica first, then takes over.
 *  - A spec master without slots whose shard lists, as a replica, a master that owns slots and that
 *    the spec demotes (a new node replacing a master that stays as its replica) first replicates that
 *    master, then takes over by failover: no key moves.
 *  - A spec master without slots whose shard keeps the replicas of a master the spec no longer lists
 *    (a new node replacing a master that goes, Terraform's -replace) does the same, and the old master
 *    is then forgotten as a replica (rules/removal): no key moves either.
 *  - A spec master with slots and no replica, while a promoted replica of its shard serves more of
 *    the shard (a failover split the shard), gives its slots to that replica, then takes over.
 */
import { countSlots } from "../../slots.js";
import { replicasOf, slotsOf } from "../../plan/simulate.js";
import type { PlanContext } from "../context.js";
import { estimateKeys } from "./slots.js";

export function fixRoles(ctx: PlanContext): void {
  const m = ctx.b.model;
  for (const sh of ctx.shards) {
    const n = m.nodes.get(sh.masterId);
    if (!n) continue;
    if (n.role === "replica") {
      const cur = ctx.members.get(n.masterId ?? "");
      const curNode = m.nodes.get(n.masterId ?? "");
      if (!cur || !curNode) {
        ctx.problems.push(`${n.addr} is a replica of an unknown master ${n.masterId ?? "-"}: wait for the cluster to settle, then plan again`);
        continue;
      }
      if (ctx.want.get(cur.id)?.role === "master") {
        // Redis may make a demoted master follow the first node that took any of its slots (a target of
        // a move) rather than the replica promoted in its place: it then re-points to that replica first.
        const own = promotedInShard(ctx, sh.replicaIds);
        if (own) {
          takeOver(ctx, n, own, `sync ${own.addr}'s data (its shard's master now) before taking over from it`, `the spec makes ${n.addr} the master and keeps ${own.addr} as its replica`);
          continue;
        }
        ctx.problems.push(
          `${n.addr} is a replica of ${cur.addr}, which the spec also keeps as a master: a replica can only become a master by taking over its own master's slots. ` +
            `Make ${cur.addr} a replica in the spec, or drop ${n.addr} from the spec and add it back later`,
        );
      } else if (!cur.reachable || cur.flags.includes("fail")) {
        ctx.problems.push(`${cur.addr}, the master of ${n.addr}, is down: Redis fails over on its own; wait, then plan again`);
      } else {
        ctx.b.push({ kind: "failover", replica: ctx.b.ref(n.id), master: ctx.b.ref(cur.id), reason: `the spec makes ${n.addr} the master` });
      }
      continue;
    }
    if (replicasOf(m, n.id).length > 0) continue;
    if (slotsOf(m, n.id).length > 0) {
      mergeSplitShard(ctx, n, sh.replicaIds);
      continue;
    }
    // An empty master: can it take over a demoted master of its own shard?
    const old = promotedInShard(ctx, sh.replicaIds);
    if (old) {
      takeOver(ctx, n, old, `sync ${old.addr}'s data before taking over from it`, `the spec makes ${n.addr} the master and keeps ${old.addr} as its replica`);
      continue;
    }
    // Or replace a master the spec no longer lists, whose replicas the shard keeps (Terraform's -replace).
    // (The model makes a replaced master a replica at once, so no second spec master replaces it too.)
    const gone = replacedMaster(ctx, sh.replicaIds);
    if (!gone) continue;
    takeOver(ctx, n, gone, `sync the data of ${gone.addr}, which it replaces, before taking over from it`, `the spec replaces ${gone.addr} by ${n.addr}: it takes over the slots with their keys, and ${gone.addr} is removed as a replica`);
  }
}

/** `n` replicates `from`, syncs its data and takes over from it by failover: no key moves. */
function takeOver(ctx: PlanContext, n: { id: string }, from: { id: string }, syncReason: string, failoverReason: string): void {
  ctx.b.push({ kind: "replicate", replica: ctx.b.ref(n.id), master: ctx.b.ref(from.id), reason: syncReason });
  ctx.b.push({ kind: "failover", replica: ctx.b.ref(n.id), master: ctx.b.ref(from.id), reason: failoverReason });
}

/**
 * The master an empty spec master replaces: a master with slots that the spec does not list (nor
 * protects), reachable and not failing, that a replica of this shard in the spec replicates now. The
 * new node then joins as its replica, syncs and takes over by failover, and the old master leaves as a
 * replica: no key moves, and the shard keeps a replica throughout.
 */
function replacedMaster(ctx: PlanContext, replicaIds: readonly string[]): { id: string; addr: string } | undefined {
  const m = ctx.b.model;
  const protectedIds = new Set(ctx.spec.protect.map((a) => ctx.idOf.get(a)));
  for (const r of replicaIds) {
    const masterId = m.nodes.get(r)?.role === "replica" ? m.nodes.get(r)?.masterId : undefined;
    if (!masterId || ctx.want.has(masterId) || protectedIds.has(masterId)) continue;
    const cur = m.nodes.get(masterId);
    const seen = ctx.members.get(masterId);
    if (cur?.role === "master" && slotsOf(m, masterId).length > 0 && seen?.reachable === true && !seen.flags.includes("fail")) return { id: masterId, addr: cur.addr };
  }
  return undefined;
}

/**
 * A shard split by a failover: a spec master with slots and no replica while a replica of its shard,
 * promoted, serves more of the shard's slots (it took over the slots it knew of, not a window just
 * handed over). The few slots move to the promoted node, which then hands the whole shard back by
 * failover: only the split-off slots' keys move.
 */
function mergeSplitShard(ctx: PlanContext, n: { id: string; addr: string }, replicaIds: readonly string[]): void {
  const m = ctx.b.model;
  const own = promotedInShard(ctx, replicaIds);
  const mine = slotsOf(m, n.id);
  if (!own || countSlots(slotsOf(m, own.id)) <= countSlots(mine) || ctx.members.get(n.id)?.reachable !== true) return;
  for (const [a, b] of mine) {
    for (let slot = a; slot <= b; slot++) {
      ctx.b.push({ kind: "migrate-slot", slot, from: ctx.b.ref(n.id), to: ctx.b.ref(own.id), estKeys: estimateKeys(ctx, n.id), reason: `rejoin ${own.addr}, which serves the rest of this shard since a failover split it` });
    }
  }
  takeOver(ctx, n, own, `sync ${own.addr}'s data (its shard's master now) before taking over from it`, `the spec makes ${n.addr} the master and keeps ${own.addr} as its replica`);
}

/** The reachable master with slots, with the most slots, among a shard's spec replicas: the node serving that shard's data now. */
function promotedInShard(ctx: PlanContext, replicaIds: readonly string[]): { id: string; addr: string } | undefined {
  const m = ctx.b.model;
  return replicaIds
    .map((id) => m.nodes.get(id))
    .filter((x): x is NonNullable<typeof x> => !!x && x.role === "master" && slotsOf(m, x.id).length > 0 && ctx.members.get(x.id)?.reachable === true)
    .sort((a, b) => countSlots(slotsOf(m, b.id)) - countSlots(slotsOf(m, a.id)) || a.addr.localeCompare(b.addr))[0];
}
