/**
 * reset-node: only ever run because the spec listed the node under cluster.allowReset and the plan
 * shows the step. Deletes the node's keys and its cluster state; the node keeps its id. Refused when
 * the node is not the plan's node (another id at that address), has become a member of this cluster,
 * or holds more keys than the plan said it would wipe.
 */
import { ClusterChangedError } from "../../errors.js";
import type { StepOf } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type ResetStep = StepOf<"reset-node">;

export async function resetNode(steps: ResetStep[], ctx: ExecCtx): Promise<void> {
  for (const s of steps) await resetOne(s, ctx);
}

async function resetOne(s: ResetStep, ctx: ExecCtx): Promise<void> {
  const view = await ctx.view(s.node.addr);
  const me = view.find((e) => e.flags.includes("myself"))!;
  if (me.id !== s.node.id) {
    throw new ClusterChangedError(`refusing to reset ${s.node.addr}: it answers with node id ${me.id.slice(0, 8)}, but the plan resets ${s.node.id.slice(0, 8)}. Plan again`);
  }
  const anchor = await ctx.anchor(s.node.id).catch(() => null);
  if (anchor && (await ctx.view(anchor)).some((e) => e.id === s.node.id && !e.flags.includes("handshake"))) {
    throw new ClusterChangedError(`refusing to reset ${s.node.addr}: ${anchor} lists it as a member of this cluster now. Plan again`);
  }
  const c = await ctx.conn(s.node.addr);
  const keys = Number(await c.call("dbsize"));
  if (view.length === 1 && me.slots.length === 0 && keys === 0) return;
  if (keys > s.keys) {
    throw new ClusterChangedError(`refusing to reset ${s.node.addr}: it holds ${keys} key(s), but the plan showed ${s.keys} to be wiped. Something is using it: check, then plan again`);
  }
  // A replica is read-only: RESET turns it into an empty master first. A master must be empty before RESET.
  if (me.role === "master") await c.call("flushall");
  await c.call("cluster", "reset", "soft");
  if (Number(await c.call("dbsize")) > 0) await c.call("flushall");
}
