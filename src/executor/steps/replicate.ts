/** replicate: CLUSTER REPLICATE on the replica, then wait until it is connected, in sync, and seen as such by all. */
import { StepFailedError } from "../../errors.js";
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type ReplicateStep = Extract<Step, { kind: "replicate" }>;

export async function replicate(s: ReplicateStep, ctx: ExecCtx): Promise<boolean> {
  const me = await ctx.self(s.replica.addr);
  const already = me.role === "replica" && me.masterId === s.master.id;
  if (!already) {
    if (me.role === "master" && me.slots.length > 0) {
      throw new StepFailedError(s.id, s.kind, `${s.replica.addr} still owns slots; the plan drains them first, so the cluster changed: plan again`);
    }
    await ctx.waitUntil(`${s.replica.addr} knows its new master ${s.master.addr}`, async () => {
      const e = (await ctx.view(s.replica.addr)).find((x) => x.id === s.master.id);
      return e && !e.flags.includes("handshake") ? null : `${s.master.addr} is not in its view yet`;
    });
    try {
      await (await ctx.conn(s.replica.addr)).call("cluster", "replicate", s.master.id);
    } catch (err) {
      const msg = (err as Error).message;
      const hint = /must be empty/.test(msg) ? ` (${s.replica.addr} still holds keys; shardform does not delete them: check what they are, FLUSHALL it by hand if they may go, then run apply again)` : "";
      throw new StepFailedError(s.id, s.kind, `CLUSTER REPLICATE on ${s.replica.addr} failed: ${msg}${hint}`);
    }
  }
  ctx.emit({ type: "wait", what: `${s.replica.addr} to sync with ${s.master.addr}` });
  await ctx.waitUntil(`${s.replica.addr} is connected to ${s.master.addr} and in sync`, async () => {
    const info = await ctx.info(s.replica.addr, "replication");
    if (info["role"] !== "slave") return `role is ${info["role"]}`;
    if (info["master_link_status"] !== "up") return `master_link_status:${info["master_link_status"]}`;
    if (info["master_sync_in_progress"] !== "0") return "sync in progress";
    return null;
  });
  await ctx.waitUntil(`every member sees ${s.replica.addr} as a replica of ${s.master.addr}`, async () => {
    for (const m of await ctx.members(s.master.addr)) {
      const e = (await ctx.view(m.addr)).find((x) => x.id === s.replica.id);
      if (!e || e.role !== "replica" || e.masterId !== s.master.id) return `${m.addr} does not see it yet`;
    }
    return null;
  });
  return already;
}
