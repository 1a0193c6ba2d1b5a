/**
 * failover: CLUSTER FAILOVER on each replica once it is in sync, then one shared wait until every member
 * sees the new roles. Redis never fails over from a master that owns no slots (not even manually), so
 * for an empty master the replica takes over with CLUSTER FAILOVER TAKEOVER: there is no data to lose.
 */
import { ClusterChangedError } from "../../errors.js";
import type { StepOf } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type FailoverStep = StepOf<"failover">;

export async function failover(steps: FailoverStep[], ctx: ExecCtx): Promise<void> {
  await Promise.all(
    steps.map(async (s) => {
      const [me, old] = await Promise.all([ctx.selfOf(s.replica), ctx.selfOf(s.master)]);
      if (me.role === "master" && old.role === "replica" && old.masterId === s.replica.id) return; // done
      if (me.role !== "replica" || me.masterId !== s.master.id) {
        throw new ClusterChangedError(`${s.replica.addr} should be a replica of ${s.master.addr} to take over from it, but it is ${me.role === "master" ? "a master" : `a replica of ${me.masterId?.slice(0, 8)}`}: plan again`);
      }
      await ctx.waitUntil(`${s.replica.addr} is in sync with ${s.master.addr}`, async () => {
        const info = await ctx.info(s.replica.addr, "replication");
        return info["master_link_status"] === "up" && info["master_sync_in_progress"] === "0" ? null : `master_link_status:${info["master_link_status"]}`;
      });
      await (await ctx.conn(s.replica.addr)).call("cluster", "failover", ...(old.slots.length === 0 ? ["takeover"] : []));
    }),
  );
  ctx.emit({ type: "wait", what: `${steps.map((s) => s.replica.addr).join(", ")} to take over` });
  await ctx.waitUntil(`every member sees the new masters and their replicas`, async () => {
    const r = await ctx.readCluster();
    for (const s of steps) {
      for (const [viewer, v] of r.views) {
        const who = r.members.find((m) => m.id === viewer)?.addr ?? viewer;
        const rep = v.find((x) => x.id === s.replica.id);
        const old = v.find((x) => x.id === s.master.id);
        if (rep?.role !== "master") return `${who} still sees ${s.replica.addr} as ${rep?.role ?? "unknown"}`;
        if (old && (old.role !== "replica" || old.masterId !== s.replica.id)) return `${who} still sees ${s.master.addr} as ${old.role}`;
      }
      const state = r.info.get(s.replica.id)?.["cluster_state"];
      if (state !== "ok") return `${s.replica.addr} reports cluster_state:${state}`;
    }
    return null;
  });
}
