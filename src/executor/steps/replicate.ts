/**
 * replicate: CLUSTER REPLICATE on each replica of the batch, then shared waits: every replica whose
 * master holds keys connected and in sync, and every replica seen as a replica of its master by every
 * member (members that lag are nudged: ExecCtx.nudge). A replica of an empty master is not waited
 * for: its first sync only starts after the master's repl-diskless-sync-delay (5 s by default) and
 * copies nothing; a later failover step waits for it, and apply waits for it at its end (waitFirstSyncs).
 */
import { ClusterChangedError, StepFailedError } from "../../errors.js";
import type { NodeRef, StepOf } from "../../plan/types.js";
import { mapLimit } from "../../util/limit.js";
import { linkSynced, type NodeEntry } from "../../redis/cluster-nodes.js";
import { DEFAULT_COMMAND_TIMEOUT_MS } from "../../redis/connect.js";
import type { ExecCtx } from "../context.js";

type ReplicateStep = StepOf<"replicate">;

export async function replicate(steps: ReplicateStep[], ctx: ExecCtx): Promise<void> {
  await Promise.all(
    steps.map(async (s) => {
      const [me, master] = await Promise.all([ctx.reads.selfOf(s.replica), ctx.reads.selfOf(s.master)]);
      if (master.role === "replica" && master.masterId === s.replica.id && me.role === "master") {
        // Already swapped by a failover (safety rule 4): the pair serves the shard the other way round.
        swapNote(s, ctx);
        return;
      }
      if (master.role !== "master") {
        throw new ClusterChangedError(`${s.master.addr} should be a master for ${s.replica.addr} to replicate, but it is a replica: a failover happened; plan again`);
      }
      if (me.role === "replica" && me.masterId === s.master.id) return;
      if (me.role === "master" && me.slots.length > 0) {
        throw new ClusterChangedError(`${s.replica.addr} still owns slots; the plan drains them first, so the cluster changed: plan again`);
      }
      await ctx.waits.waitUntil(`${s.replica.addr} knows its new master ${s.master.addr}`, async () => {
        const e = (await ctx.reads.view(s.replica.addr)).find((x) => x.id === s.master.id);
        return e && !e.flags.includes("handshake") ? null : `${s.master.addr} is not in its view yet`;
      });
      try {
        await (await ctx.conn(s.replica.addr)).call("cluster", "replicate", s.master.id);
      } catch (err) {
        const msg = (err as Error).message;
        const hint = /must be empty/.test(msg) ? ` (${s.replica.addr} still holds keys; shardform does not delete them: check what they are, FLUSHALL it by hand if they may go, then run apply again)` : "";
        throw new StepFailedError(s.id, s.kind, `CLUSTER REPLICATE on ${s.replica.addr} failed: ${msg}${hint}`);
      }
    }),
  );
  // Safety rule 4: the cluster may fail the master over to this very replica while it is attached (the
  // master paused or killed): the pair then serves the shard the other way round, which this step accepts.
  const promoted = new Set<string>();
  const swapped = (s: ReplicateStep, self: NodeEntry | undefined): boolean => {
    if (promoted.has(s.id)) return true;
    if (!(self?.role === "master" && self.slots.length > 0)) return false;
    promoted.add(s.id);
    swapNote(s, ctx);
    return true;
  };
  const keys = await mapLimit(steps, 32, async (s) => Number(await (await ctx.conn(s.master.addr)).call("dbsize").catch(() => 0)));
  const syncing = steps.filter((_, i) => keys[i]! > 0);
  if (syncing.length > 0) ctx.emit({ type: "wait", what: `${syncing.length === 1 ? syncing[0]!.replica.addr : `${syncing.length} replicas`} to sync` });
  await ctx.waits.waitUntil(`${syncing.map((s) => s.replica.addr).join(", ")} connected to their masters and in sync`, async () => {
    const states = await mapLimit(syncing, 32, async (s) => {
      if (swapped(s, await ctx.reads.selfOrNull(s.replica).catch(() => null) ?? undefined)) return null;
      const info = await ctx.reads.info(s.replica.addr, "replication");
      if (info["role"] !== "slave") return `${s.replica.addr}: role is ${info["role"]}`;
      if (info["master_link_status"] !== "up") return `${s.replica.addr}: master_link_status:${info["master_link_status"]}`;
      if (info["master_sync_in_progress"] !== "0") return `${s.replica.addr}: sync in progress`;
      return null;
    });
    return states.find((x) => x !== null) ?? null;
  });
  await ctx.waits.waitUntil(`every member sees the new replicas`, async () => {
    const r = await ctx.reads.readCluster();
    const lags: { s: ReplicateStep; viewer: NodeEntry }[] = [];
    const members = new Map(r.members.map((m) => [m.id, m]));
    for (const s of steps) {
      if (swapped(s, r.views.get(s.replica.id)?.find((x) => x.flags.includes("myself")))) continue;
      for (const [id, v] of r.views) {
        const e = v.find((x) => x.id === s.replica.id);
        const viewer = members.get(id);
        if ((!e || e.role !== "replica" || e.masterId !== s.master.id) && viewer) lags.push({ s, viewer });
      }
    }
    await mapLimit(lags, 32, (l) => ctx.waits.nudge(l.s.replica, l.viewer));
    const l = lags[0];
    return l ? `${l.viewer.addr} does not see ${l.s.replica.addr} as a replica of ${l.s.master.addr} yet` : null;
  });
}

/**
 * The end of an apply: every replica the plan attached (and that is still a replica) has finished its
 * first sync, so that `apply && check` passes. The replicate step waits only for replicas of masters
 * that hold keys; a replica of an empty master starts its sync only after the master's
 * repl-diskless-sync-delay (5 s on stock servers) and is waited for here, once for all, bounded:
 * one that has not finished by then is named in a warning.
 */
export async function waitFirstSyncs(replicas: readonly NodeRef[], ctx: ExecCtx, timeoutMs = ctx.options.waitTimeoutMs): Promise<string[]> {
  const pending = async (): Promise<NodeRef[]> => {
    const states = await mapLimit(replicas, 32, async (r) => {
      const info = await ctx.reads.info(r.addr, "replication").catch(() => null);
      // Not a replica (any more), or not answering: not this wait's business (the end state judges it).
      return !!info && info["role"] === "slave" && !linkSynced(info);
    });
    return replicas.filter((_, i) => states[i]);
  };
  let left = await pending();
  if (left.length === 0) return [];
  ctx.emit({
    type: "wait",
    what: `${left.length === 1 ? left[0]!.addr : `${left.length} new replicas`} to finish the first sync (a master starts it after its repl-diskless-sync-delay; up to ${Math.round(timeoutMs / 1000)} s)`,
  });
  // The bound is this wait's own: when it passes, the replicas still syncing are named in a warning (the
  // outer bound of waitUntil only covers a poll that hangs past it).
  const deadline = Date.now() + timeoutMs;
  await ctx.waits.waitUntil(
    "the new replicas finish their first sync",
    async () => {
      left = await pending();
      return left.length === 0 || Date.now() >= deadline ? null : `${left.map((r) => r.addr).join(", ")} still syncing`;
    },
    timeoutMs + DEFAULT_COMMAND_TIMEOUT_MS + 5000,
  );
  if (left.length === 0) return [];
  return [`${left.map((r) => r.addr).join(", ")} had not finished the first sync with its master after ${Math.round(timeoutMs / 1000)} s: \`shardform check\` shows its progress; it serves no reads until it ends`];
}

/** Safety rule 4: the cluster failed the step's master over to the replica being attached; the pair serves the shard the other way round. */
function swapNote(s: ReplicateStep, ctx: ExecCtx): void {
  ctx.noteOnce(`the cluster failed ${s.master.addr} over to ${s.replica.addr} while it was being attached as its replica: the shard is served the other way round`);
}
