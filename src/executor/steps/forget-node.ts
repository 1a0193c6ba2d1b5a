/**
 * forget-node: CLUSTER FORGET is local to the node that receives it, so it goes to every remaining
 * member, in parallel (each one bans the node for 60 s, so gossip cannot bring it back meanwhile).
 * Then CLUSTER RESET SOFT on the removed node, if it answers, so that it stops rejoining.
 */
import { StepFailedError } from "../../errors.js";
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type ForgetStep = Extract<Step, { kind: "forget-node" }>;

export async function forgetNode(s: ForgetStep, ctx: ExecCtx): Promise<boolean> {
  const via = await ctx.anchor(s.node.id);
  const remaining = (await ctx.members(via)).filter((m) => m.id !== s.node.id);
  const orphans = remaining.filter((m) => m.masterId === s.node.id);
  if (orphans.length > 0) {
    throw new StepFailedError(
      s.id,
      s.kind,
      `${orphans.map((o) => o.addr).join(", ")} still replicate ${s.node.addr}; the plan re-points them first, so the cluster changed: plan again`,
    );
  }
  let sent = false;
  await ctx.waitUntil(`no member lists ${s.node.addr}`, async () => {
    const holders: string[] = [];
    await Promise.all(
      remaining.map(async (m) => {
        const listed = (await ctx.view(m.addr)).some((e) => e.id === s.node.id);
        if (!listed) return;
        holders.push(m.addr);
        try {
          await (await ctx.conn(m.addr)).call("cluster", "forget", s.node.id);
          sent = true;
        } catch (err) {
          if (!/Unknown node/i.test((err as Error).message)) throw err;
        }
      }),
    );
    return holders.length === 0 ? null : `still listed by ${holders.join(", ")}`;
  });
  // Make the removed node forget the cluster too, if it is still up (keys are never its own: it was drained).
  try {
    const c = await ctx.conn(s.node.addr);
    const me = await ctx.self(s.node.addr);
    if (me.id === s.node.id && (await ctx.view(s.node.addr)).length > 1) await c.call("cluster", "reset", "soft");
  } catch {
    ctx.emit({ type: "note", message: `${s.node.addr} did not answer; it was forgotten by every member but could not be reset` });
  } finally {
    await ctx.drop(s.node.addr);
  }
  return !sent;
}
