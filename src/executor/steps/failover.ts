/** failover: CLUSTER FAILOVER on the replica once it is in sync, then wait until every member sees the new roles. */
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type FailoverStep = Extract<Step, { kind: "failover" }>;

export async function failover(s: FailoverStep, ctx: ExecCtx): Promise<boolean> {
  const me = await ctx.self(s.replica.addr);
  const done = me.role === "master";
  if (!done) {
    await ctx.waitUntil(`${s.replica.addr} is in sync with ${s.master.addr}`, async () => {
      const info = await ctx.info(s.replica.addr, "replication");
      return info["master_link_status"] === "up" && info["master_sync_in_progress"] === "0" ? null : `master_link_status:${info["master_link_status"]}`;
    });
    await (await ctx.conn(s.replica.addr)).call("cluster", "failover");
  }
  ctx.emit({ type: "wait", what: `${s.replica.addr} to take over from ${s.master.addr}` });
  await ctx.waitUntil(`every member sees ${s.replica.addr} as master and ${s.master.addr} as its replica`, async () => {
    for (const m of await ctx.members(s.replica.addr)) {
      const v = await ctx.view(m.addr);
      const r = v.find((x) => x.id === s.replica.id);
      const o = v.find((x) => x.id === s.master.id);
      if (r?.role !== "master") return `${m.addr} still sees ${s.replica.addr} as ${r?.role ?? "unknown"}`;
      if (o && (o.role !== "replica" || o.masterId !== s.replica.id)) return `${m.addr} still sees ${s.master.addr} as ${o.role}`;
    }
    const state = (await ctx.clusterInfo(s.replica.addr))["cluster_state"];
    return state === "ok" ? null : `cluster_state:${state}`;
  });
  return done;
}
