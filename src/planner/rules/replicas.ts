/**
 * Rules 6 and 8: point replicas at their spec masters. Early: nodes that hold no slots and have no
 * replicas of their own (new nodes, replicas to re-point). Late: the rest, drained masters that become
 * replicas (with or without replicas of their own before).
 */
import { replicasOf } from "../../plan/simulate.js";
import type { PlanContext } from "../context.js";
import { forget } from "./removal.js";

export function attachReplicas(ctx: PlanContext, late: boolean): void {
  const m = ctx.b.model;
  for (const sh of ctx.shards) {
    for (const id of sh.replicaIds) {
      const cur = m.nodes.get(id);
      if (!cur || (cur.role === "replica" && cur.masterId === sh.masterId)) continue;
      const busy = cur.role === "master" && (m.owner.includes(id) || replicasOf(m, id).length > 0);
      if (busy && !late) continue;
      // A master about to become a replica first loses the replicas the spec drops.
      for (const x of replicasOf(m, id)) if (!ctx.want.has(x.id)) forget(ctx, x.id);
      if (replicasOf(m, id).length > 0 || m.owner.includes(id)) continue;
      ctx.b.push({
        kind: "replicate",
        replica: ctx.b.ref(id),
        master: ctx.b.ref(sh.masterId),
        reason: cur.role === "master" ? (late ? "drained master becomes a replica" : "new replica") : `re-point from ${ctx.b.ref(cur.masterId!).addr}`,
      });
    }
  }
}
