/**
 * Rule 1b (safety rule 9): keys of a slot on a master that neither owns nor has it open, while another
 * master owns it. Clients never read them. When a known move of that slot (a plan given as history)
 * went from the holder's shard to the owner's, they are moved to the owner; otherwise planning stops.
 */
import { staleCopies, strayOrigin, type PastMove } from "../../safety/rules.js";
import type { PlanContext } from "../context.js";

/** `receiving`: slots each node is about to receive by a move rule 1 finishes (keys there are expected). */
export function repairStrayKeys(ctx: PlanContext, receiving: ReadonlyMap<string, ReadonlySet<number>>, history: readonly PastMove[]): void {
  const open = new Set(ctx.observed.nodes.flatMap((n) => [...n.migrating, ...n.importing].map((m) => m.slot)));
  for (const n of ctx.observed.nodes) {
    for (const s of n.strayKeys ?? []) {
      const owner = ctx.b.model.owner[s.slot] ?? null;
      if (s.db !== undefined) {
        ctx.problems.push(
          `${n.addr} holds ${s.keys} key(s) of slot ${s.slot} in database ${s.db}, which ${owner ? ctx.b.ref(owner).addr : "no master"} owns, so clients cannot read them. ` +
            `shardform repairs stray keys in database 0 only: compare them with the owner's copies (SELECT ${s.db}), then move them (MIGRATE ... ${s.db} ...) or delete them by hand, and plan again`,
        );
        continue;
      }
      if (receiving.get(n.id)?.has(s.slot)) continue;
      const ownerNode = owner === null ? undefined : ctx.observed.nodes.find((o) => o.id === owner);
      if (ownerNode && !open.has(s.slot) && staleCopies(n, ownerNode, s.slot, history)) {
        ctx.b.push({
          kind: "move-stray-keys",
          slot: s.slot,
          from: ctx.b.ref(n.id),
          to: ctx.b.ref(ownerNode.id),
          keys: s.keys,
          destructive: true,
          drop: true,
          reason: `stale copies: ${n.addr} was promoted from a replica of ${ownerNode.addr} after a plan moved slot ${s.slot} into their shard, and ${ownerNode.addr} kept the slot (a failover split the shard)`,
        });
        continue;
      }
      if (owner !== null && !open.has(s.slot) && strayOrigin(n.id, owner, s.slot, history)) {
        ctx.b.push({
          kind: "move-stray-keys",
          slot: s.slot,
          from: ctx.b.ref(n.id),
          to: ctx.b.ref(owner),
          keys: s.keys,
          destructive: true,
          reason: `a plan moved slot ${s.slot} from this shard to ${ctx.b.ref(owner).addr} without them`,
        });
        continue;
      }
      const hint =
        owner !== null && open.has(s.slot)
          ? `slot ${s.slot} is open: finish or close that move first`
          : history.length > 0
            ? `no plan given with --history moved slot ${s.slot} from ${n.addr}'s shard to ${owner ? ctx.b.ref(owner).addr : "an owner"}`
            : `if a shardform plan moved slot ${s.slot} from ${n.addr}'s shard, plan again with --history THAT_PLAN.json and shardform moves them to the owner`;
      ctx.problems.push(
        `${n.addr} holds ${s.keys} key(s) of slot ${s.slot}, which ${owner ? ctx.b.ref(owner).addr : "no master"} owns, so clients cannot read them. ` +
          `shardform does not guess which copy is right when it does not know how they got there (${hint}): otherwise compare them with the owner's, then move them (MIGRATE) or delete them by hand, and plan again`,
      );
    }
  }
}

