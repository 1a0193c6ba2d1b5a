/** Rule 9: members the spec does not list are forgotten by every remaining member, replicas first. */
import { replicasOf } from "../../plan/simulate.js";
import type { PlanContext } from "../context.js";

/**
 * Forgets a member the spec does not list, after its own unlisted replicas. A replica is forgotten
 * only after every slot move out of its master: a shard keeps its replicas while its keys move, so
 * that a failure of the master meanwhile has a replica to promote.
 */
export function forget(ctx: PlanContext, id: string): void {
  const n = ctx.b.model.nodes.get(id);
  if (!n) return;
  for (const x of replicasOf(ctx.b.model, id)) if (!ctx.want.has(x.id)) forget(ctx, x.id);
  const step = ctx.b.push({ kind: "forget-node", node: ctx.b.ref(id), destructive: true, reason: "not in the spec" });
  if (n.role !== "replica" || !n.masterId) return;
  const moves = ctx.b.steps.filter((s) => s.kind === "migrate-slot" && s.from.id === n.masterId && s !== step).map((s) => s.id);
  step.needs = [...new Set([...step.needs, ...moves])].sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
}

export function removeUnlisted(ctx: PlanContext): void {
  const gone = [...ctx.b.model.nodes.values()].filter((n) => !ctx.want.has(n.id));
  gone.sort((a, b) => (a.role === b.role ? a.addr.localeCompare(b.addr) : a.role === "replica" ? -1 : 1));
  for (const n of gone) forget(ctx, n.id);
}
