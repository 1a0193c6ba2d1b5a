/** Rule 9: members the spec does not list are forgotten by every remaining member, replicas first. */
import { replicasOf } from "../../plan/simulate.js";
import type { PlanContext } from "../context.js";

/**
 * Forgets a member the spec does not list, after its own unlisted replicas. A drained master's replica
 * is forgotten without waiting for the drain: keeping it to the end (so that a failure of the master
 * meanwhile has a replica to promote) was tried, and the chaos tier then left a cluster down when the
 * draining master was failed over mid-drain (see the README's known gaps).
 */
export function forget(ctx: PlanContext, id: string): void {
  if (!ctx.b.model.nodes.has(id)) return;
  for (const x of replicasOf(ctx.b.model, id)) if (!ctx.want.has(x.id)) forget(ctx, x.id);
  ctx.b.push({ kind: "forget-node", node: ctx.b.ref(id), destructive: true, reason: "not in the spec" });
}

export function removeUnlisted(ctx: PlanContext): void {
  const gone = [...ctx.b.model.nodes.values()].filter((n) => !ctx.want.has(n.id));
  gone.sort((a, b) => (a.role === b.role ? a.addr.localeCompare(b.addr) : a.role === "replica" ? -1 : 1));
  for (const n of gone) forget(ctx, n.id);
}
