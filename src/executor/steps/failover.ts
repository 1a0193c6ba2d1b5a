/**
 * failover: CLUSTER FAILOVER on each replica once it is in sync, then one shared wait until every member
 * sees the new roles. Redis never fails over from a master that owns no slots (not even manually), so
 * for an empty master the replica takes over with CLUSTER FAILOVER TAKEOVER: there is no data to lose.
 *
 * A manual failover can fail without an error: it lapses when a master refuses its vote, and a
 * replica asked too soon after an election it won steps back at once (see reaskAfterMs). So a step
 * is done only when the old master follows the replica (or is gone), and a replica that still follows
 * the same master is asked again.
 */
import { ClusterChangedError } from "../../errors.js";
import type { StepOf } from "../../plan/types.js";
import { linkSynced } from "../../redis/cluster-nodes.js";
import type { ExecCtx } from "../context.js";

type FailoverStep = StepOf<"failover">;

/**
 * When a replica that is still not its shard's master is asked again. A manual failover lapses after
 * 5 s (CLUSTER_MF_TIMEOUT). And a replica starts a new election only once the last one is older than
 * Redis's failover retry time, 2 x max(2 x cluster-node-timeout, 2 s): asked sooner, it counts the last
 * election's votes again, "wins" with that election's config epoch, and steps back at once because its
 * master's epoch is newer (seen on Redis 7.0 when a shard is failed back seconds after a failover).
 */
export function reaskAfterMs(nodeTimeoutMs: number): number {
  return Math.max(8000, 2 * Math.max(2 * nodeTimeoutMs, 2000) + 1000);
}

export async function failover(steps: FailoverStep[], ctx: ExecCtx): Promise<void> {
  await Promise.all(
    steps.map(async (s) => {
      const [me, old] = await Promise.all([ctx.reads.selfOf(s.replica), ctx.reads.selfOf(s.master)]);
      if (me.role === "master" && old.role === "replica" && old.masterId === s.replica.id) return; // done
      if (me.role !== "replica" || me.masterId !== s.master.id) {
        throw new ClusterChangedError(`${s.replica.addr} should be a replica of ${s.master.addr} to take over from it, but it is ${me.role === "master" ? "a master" : `a replica of ${me.masterId?.slice(0, 8)}`}: plan again`);
      }
      await ctx.waits.waitUntil(`${s.replica.addr} is in sync with ${s.master.addr}`, async () => {
        const info = await ctx.reads.info(s.replica.addr, "replication");
        return linkSynced(info) ? null : `master_link_status:${info["master_link_status"]}`;
      });
      const args = old.slots.length === 0 ? ["takeover"] : [];
      const every = reaskAfterMs(ctx.nodeTimeoutMs);
      let asked = 0;
      await ctx.waits.waitUntil(
        `${s.replica.addr} takes over from ${s.master.addr}`,
        async () => {
          const [now, was] = await Promise.all([ctx.reads.selfOf(s.replica), ctx.reads.selfOrNull(s.master)]);
          // Done once the old master follows it (or is gone): a replica that only says "master" may step back.
          if (now.role === "master" && (was === null || (was.role === "replica" && was.masterId === s.replica.id))) return null;
          if (now.role === "replica" && now.masterId !== s.master.id) {
            throw new ClusterChangedError(`${s.replica.addr} should take over from ${s.master.addr}, but it now follows ${now.masterId?.slice(0, 8) ?? "no master"}: plan again`);
          }
          if (now.role === "replica" && Date.now() >= asked + every) {
            if (asked > 0) {
              ctx.emit({
                type: "note",
                message: `${s.replica.addr} did not take over from ${s.master.addr} within ${Math.round(every / 1000)} s (Redis lets a manual failover lapse when a master refuses its vote, and a replica that won an election shortly before can "win" again on stale votes and step back at once); asking it again`,
              });
            }
            await (await ctx.conn(s.replica.addr)).call("cluster", "failover", ...args);
            asked = Date.now();
          }
          return now.role === "master" ? `${s.master.addr} does not follow ${s.replica.addr} yet` : `${s.replica.addr} is still a replica`;
        },
        Math.max(ctx.options.waitTimeoutMs, 2 * every + 5000),
      );
    }),
  );
  ctx.emit({ type: "wait", what: `${steps.map((s) => s.replica.addr).join(", ")} to take over` });
  await ctx.waits.waitUntil(`every member sees the new masters and their replicas`, async () => {
    const r = await ctx.reads.readCluster();
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
