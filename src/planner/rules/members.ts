/** Rules 2-3: reset the nodes the spec allows to be wiped, then meet every new node. */
import type { Outsider } from "../../observe/types.js";
import type { PlanContext } from "../context.js";

export function addMembers(ctx: PlanContext, toReset: Outsider[], toMeet: Outsider[]): void {
  if (toMeet.length === 0) return;
  const reachable = (id: string) => ctx.b.model.nodes.has(id) && ctx.members.get(id)?.reachable;
  const anchor = ctx.shards.map((s) => s.masterId).find(reachable) ?? [...ctx.members.values()].find((n) => n.reachable)?.id;
  if (!anchor) {
    ctx.problems.push("no reachable member to join new nodes through");
    return;
  }
  for (const x of toReset) {
    ctx.b.push({ kind: "reset-node", node: ctx.b.ref(x.id!), keys: x.keys ?? 0, destructive: true, reason: `${x.detail ?? x.state}; allowed by cluster.allowReset` });
  }
  for (const x of toMeet) ctx.b.push({ kind: "meet", node: ctx.b.ref(x.id!), via: ctx.b.ref(anchor), reason: "new node" });
}
