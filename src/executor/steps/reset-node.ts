/**
 * reset-node: only ever run because the spec listed the node under cluster.allowReset and the plan
 * shows the step. Deletes the node's keys and its cluster state; the node keeps its id.
 */
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type ResetStep = Extract<Step, { kind: "reset-node" }>;

export async function resetNode(s: ResetStep, ctx: ExecCtx): Promise<boolean> {
  const c = await ctx.conn(s.node.addr);
  const view = await ctx.view(s.node.addr);
  const me = view.find((e) => e.flags.includes("myself"))!;
  const keys = Number(await c.call("dbsize"));
  if (view.length === 1 && me.slots.length === 0 && keys === 0) return true;
  // A replica is read-only: RESET turns it into an empty master first. A master must be empty before RESET.
  if (me.role === "master") await c.call("flushall");
  await c.call("cluster", "reset", "soft");
  if (Number(await c.call("dbsize")) > 0) await c.call("flushall");
  return false;
}
