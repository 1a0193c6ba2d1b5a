/**
 * reset-node: only ever run because the spec listed the node under cluster.allowReset and the plan
 * shows the step. Deletes the node's keys and its cluster state with CLUSTER RESET HARD, which gives it a
 * new node id (safety rule 7): the cluster it belonged to knows the old id, keeps pinging it, and would
 * otherwise learn this cluster's members from its answers and merge the two. The new id is recorded in
 * the checkpoint at once, and the steps after it name the node by that id. Refused when the node is not
 * the plan's node (another id at that address, unless it is the fresh node this step left behind before
 * apply was stopped), has become a member of this cluster, or holds more keys than the plan said it
 * would wipe (unless it replicates one of the plan's masters: its keys are copies of that master's).
 */
import { ClusterChangedError } from "../../errors.js";
import type { StepOf } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type ResetStep = StepOf<"reset-node">;

export async function resetNode(steps: ResetStep[], ctx: ExecCtx): Promise<void> {
  for (const s of steps) await resetOne(s, ctx);
}

async function resetOne(s: ResetStep, ctx: ExecCtx): Promise<void> {
  const view = await ctx.reads.view(s.node.addr);
  const me = view.find((e) => e.flags.includes("myself"))!;
  const c = await ctx.conn(s.node.addr);
  const keys = Number(await c.call("dbsize"));
  if (me.id !== s.node.id) {
    // The reset ran, and apply stopped before it recorded the new id: a fresh node at that address.
    if (view.length === 1 && me.slots.length === 0 && keys === 0 && me.role === "master") {
      ctx.emit({ type: "note", message: `${s.node.addr} was reset before apply stopped: it is now node ${me.id.slice(0, 8)} (was ${s.node.id.slice(0, 8)})` });
      ctx.rename(s.node.id, me.id);
      return;
    }
    throw new ClusterChangedError(`refusing to reset ${s.node.addr}: it answers with node id ${me.id.slice(0, 8)}, but the plan resets ${s.node.id.slice(0, 8)}. Plan again`);
  }
  const anchor = await ctx.reads.anchor(s.node.id).catch(() => null);
  if (anchor && (await ctx.reads.view(anchor)).some((e) => e.id === s.node.id && !e.flags.includes("handshake"))) {
    throw new ClusterChangedError(`refusing to reset ${s.node.addr}: ${anchor} lists it as a member of this cluster now. Plan again`);
  }
  // Resumed after the reset was recorded: the step names the new id, and the node is still fresh.
  if (Object.values(ctx.renames).includes(s.node.id) && view.length === 1 && me.slots.length === 0 && keys === 0) return;
  // A replica of one of this plan's masters holds copies of that master's keys (rule 1), and gains more
  // as keys move into it: a count above the plan's is no sign that something else uses it.
  const copies = me.role === "replica" && me.masterId !== null && ctx.replicas.has(me.masterId);
  if (keys > s.keys && !copies) {
    throw new ClusterChangedError(`refusing to reset ${s.node.addr}: it holds ${keys} key(s), but the plan showed ${s.keys} to be wiped. Something is using it: check, then plan again`);
  }
  // A replica is read-only: RESET turns it into an empty master first. A master must be empty before RESET.
  if (me.role === "master") await c.call("flushall");
  await c.call("cluster", "reset", "hard");
  if (Number(await c.call("dbsize")) > 0) await c.call("flushall");
  const id = String(await c.call("cluster", "myid"));
  ctx.emit({ type: "note", message: `${s.node.addr} was reset: it is now node ${id.slice(0, 8)} (was ${s.node.id.slice(0, 8)})` });
  ctx.rename(s.node.id, id);
}
