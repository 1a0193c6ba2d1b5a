/**
 * forget-node: CLUSTER FORGET is local to the node that receives it, so it goes to every remaining
 * member, in parallel (each one bans the node for 60 s, so gossip cannot bring it back meanwhile).
 * Then CLUSTER RESET SOFT on the removed node, if it answers, so that it stops rejoining.
 * Refused when the node still owns slots, is still replicated, or is a master holding keys.
 */
import { ClusterChangedError, NodeTimeoutError, NodeUnreachableError } from "../../errors.js";
import type { StepOf } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";
import type { NodeEntry } from "../../redis/cluster-nodes.js";
import { entriesOf } from "../../safety/rules.js";
import { describe } from "../../redis/errors.js";

type ForgetStep = StepOf<"forget-node">;

export async function forgetNode(steps: ForgetStep[], ctx: ExecCtx): Promise<void> {
  for (const s of steps) await forgetOne(s, ctx);
}

async function forgetOne(s: ForgetStep, ctx: ExecCtx): Promise<void> {
  // Who the members are, and whether the node still owns slots, is read on a master that owns slots: every
  // master was told each handover (SETSLOT NODE), while a replica learns the last ones by gossip.
  const { addr: via, view } = await ctx.reads.authority(s.node.id);
  const entry = view.find((e) => e.id === s.node.id);
  const remaining = view.filter((e) => e.id !== s.node.id && !e.flags.includes("handshake") && !e.flags.includes("noaddr")).map((e) => (e.flags.includes("myself") ? { ...e, addr: via } : e));
  if (entry && entry.slots.length > 0) {
    throw new ClusterChangedError(`refusing to forget ${s.node.addr}: it still owns slots (as ${via} sees it). The plan drains it first, so the cluster changed: check it and plan again`);
  }
  const orphans = remaining.filter((m) => m.masterId === s.node.id);
  // The cluster may have swapped a removed shard's roles (a failover while it drained): its replica, the
  // master now, comes first in the plan. Its own replicas that the plan removes too go first here.
  if (orphans.length > 0 && orphans.every((o) => ctx.planForgets.has(o.id))) {
    for (const o of orphans) await forgetOne({ ...s, node: { id: o.id, addr: o.addr } }, ctx);
    return forgetOne(s, ctx);
  }
  if (orphans.length > 0) {
    // A master failed over by the plan (a replacement) leaves as a replica of its successor, and Redis
    // re-points its other replicas there by gossip, a moment later: wait for that, and nudge it.
    const successor = entry?.role === "replica" && entry.masterId ? remaining.find((e) => e.id === entry.masterId && e.role === "master") : undefined;
    if (!successor) {
      throw new ClusterChangedError(`refusing to forget ${s.node.addr}: ${orphans.map((o) => o.addr).join(", ")} still replicate it; the plan re-points them first, so the cluster changed: plan again`);
    }
    await followSuccessor(s, successor, ctx);
    return forgetOne(s, ctx);
  }
  // The node itself, if it answers: it must be the plan's node, and not a master holding keys.
  let self: { id: string; role: string; keys: number; known: number } | null = null;
  try {
    const v = await ctx.reads.view(s.node.addr);
    const me = v.find((e) => e.flags.includes("myself"))!;
    self = { id: me.id, role: me.role, keys: Number(await (await ctx.conn(s.node.addr)).call("dbsize")), known: v.length };
  } catch {
    self = null;
  }
  if (self && self.id === s.node.id && self.role === "master" && self.keys > 0) {
    throw new ClusterChangedError(
      `refusing to forget ${s.node.addr}: it is a master that still holds ${self.keys} key(s) (the plan drained it, so something wrote to it). Check what they are, then plan again`,
    );
  }
  let sent = false;
  await ctx.waits.waitUntil(`no member lists ${s.node.addr}`, async () => {
    const holders: string[] = [];
    await Promise.all(
      remaining.map(async (m) => {
        let listed: NodeEntry[];
        try {
          listed = entriesOf(await ctx.reads.view(m.addr), s.node);
        } catch (err) {
          // A member that cannot be reached cannot be told: the plan named it and the end state reports it.
          // One that answers with an error (LOADING, just restarted and resyncing) still lists the node: wait for it.
          if (err instanceof NodeUnreachableError || err instanceof NodeTimeoutError) return;
          holders.push(`${m.addr} (${(err as Error).message.split("\n")[0]})`);
          return;
        }
        if (listed.length === 0) return;
        holders.push(m.addr);
        for (const e of listed) {
          try {
            await (await ctx.conn(m.addr)).call("cluster", "forget", e.id);
            sent = true;
          } catch (err) {
            if (!/Unknown node/i.test((err as Error).message)) throw err;
          }
        }
      }),
    );
    return holders.length === 0 ? null : `still listed by ${holders.join(", ")}`;
  });
  const at = ctx.knownAddrs.indexOf(s.node.addr);
  if (at >= 0) ctx.knownAddrs.splice(at, 1);
  // Make the removed node forget the cluster too, if it is still up (its keys are copies: it was drained).
  if (self && self.id === s.node.id && self.known > 1) {
    try {
      await (await ctx.conn(s.node.addr)).call("cluster", "reset", "soft");
    } catch (err) {
      ctx.emit({
        type: "warning",
        message:
          `${s.node.addr} was forgotten by every member but refused CLUSTER RESET SOFT (${describe(err)}), so it still remembers this cluster` +
          `${self.role === "replica" ? " and keeps its copy of its master's keys" : ""}: reset it by hand (CLUSTER RESET SOFT once the cause is gone), or list it under cluster.allowReset before adding it back`,
      });
    }
  } else if (!self) {
    ctx.emit({
      type: "warning",
      message: `${s.node.addr} did not answer; it was forgotten by every member but could not be reset, so it still remembers this cluster: a plan that adds it back refuses it unless the spec lists it under cluster.allowReset`,
    });
  }
  if (!sent) ctx.emit({ type: "note", message: `${s.node.addr} was already forgotten` });
}

/**
 * Waits until no member lists a replica of `s.node` (a replica itself now, of `successor`): each such
 * replica is told CLUSTER REPLICATE <successor> once gossip has had its grace (the same shard's data,
 * so a partial resync). A replica that is down is left to the end state.
 */
async function followSuccessor(s: ForgetStep, successor: { id: string; addr: string }, ctx: ExecCtx): Promise<void> {
  await ctx.waits.waitUntil(`the replicas of ${s.node.addr} follow ${successor.addr}, which took over from it`, async () => {
    const { view } = await ctx.reads.authority(s.node.id);
    const left = view.filter((e) => e.masterId === s.node.id && e.id !== successor.id);
    for (const o of left) {
      if (!ctx.waits.nudgeDue(`follow ${o.id} ${successor.id}`)) continue;
      await (await ctx.conn(o.addr)).call("cluster", "replicate", successor.id).catch(() => undefined);
    }
    return left.length === 0 ? null : `${left.map((o) => o.addr).join(", ")} still replicate ${s.node.addr}`;
  });
}
