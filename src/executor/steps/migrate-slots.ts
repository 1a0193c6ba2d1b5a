/**
 * migrate-slot: the protocol redis-cli uses, batched over a window of slots of one source -> target
 * pair (one slot is a window of one), made resumable, and moving shard to shard (src/safety/rules.ts):
 *   0. find who serves the source's and the target's shards now: the plan's nodes, or, when the cluster
 *      failed one over, the replica it promoted (a note says so). A source that gave away its last slot
 *      and follows the new owner has nothing left to move. Each slot is taken from wherever it stands
 *      (owned by the source, half moved, already moved); a target still importing from a node that is
 *      no longer the source's master is first told the slot's owner;
 *   1. SETSLOT IMPORTING on the target, then SETSLOT MIGRATING on the source, for every slot the
 *      source still owns (one pipeline per node); this also turns a source's MIGRATING toward a target
 *      that was failed over toward the target's new master, so that clients never loop on ASK;
 *   2. all slots in flight: GETKEYSINSLOT for every slot not yet empty (one pipeline), then MIGRATE ...
 *      KEYS per slot with keys (a second), repeated until every slot is empty on the source (one pass
 *      is not enough: keys written meanwhile are caught by the next). A slot whose MIGRATE fails goes
 *      key by key: BUSYKEY, a key too big for the timeout, a target that refuses it;
 *   3. before any slot is handed over: COUNTKEYSINSLOT on every master that owns, claims or has the slot
 *      open in any member's view must be 0 (the source that was drained, and any node a failover made
 *      master meanwhile). A replica or a LOADING node is never taken as proof that a slot is empty;
 *   4. SETSLOT NODE <target> on the target, then the source, then every other master.
 * A master that gives away its last slot becomes a replica of the new owner (Redis and Valkey), so on
 * the source and other masters "Please use SETSLOT only with masters" (or Valkey's UNBLOCKED reply to a
 * pipelined SETSLOT) is expected; the end checks that the target owns every slot of the window.
 */
import { ClusterChangedError, FailoverPendingError, NodeTimeoutError, PermissionError, StepFailedError } from "../../errors.js";
import { listedReplicas, type NodeEntry } from "../../redis/cluster-nodes.js";
import { describe, type NodeClient } from "../../redis/connect.js";
import { transientCause } from "../../redis/errors.js";
import { parseNodeAddr } from "../../redis/node-key.js";
import { encodeCommands } from "../../redis/raw-pipeline.js";
import { arrayFrame, commandWithRaw, frameError, frameValue } from "../../redis/raw-lane.js";
import type { NodeRef, StepOf } from "../../plan/types.js";
import { busyKeyWinner, keyCount, ownsSlot as owns, shardServer, slotsClaimants, type ShardServer } from "../../safety/rules.js";
import type { ExecCtx } from "../context.js";
import { failpoint } from "../failpoints.js";
import { MIGRATES_IN_FLIGHT } from "../latency.js";
import { migrateSlotsAtomic } from "./migrate-atomic.js";

type MigrateStep = StepOf<"migrate-slot">;

/** MIGRATE's timeout never grows past this, nor past a quarter of cluster-node-timeout. */
const MAX_MIGRATE_TIMEOUT_MS = 50_000;

/** How many times a window drains again when the check before the handover finds keys left on the source. */
const MAX_DRAIN_ROUNDS = 5;

const importingFrom = (e: NodeEntry, slot: number, peer: string): boolean => e.importing.some((m) => m.slot === slot && m.peerId === peer);
const migratingTo = (e: NodeEntry, slot: number, peer: string): boolean => e.migrating.some((m) => m.slot === slot && m.peerId === peer);

/** The source or another master turned into a replica (it gave away its last slot). */
export const NOW_REPLICA = /Please use SETSLOT only with masters|UNBLOCKED.*master -> replica/;

/** The longest MIGRATE timeout: a MIGRATE blocks its source, which must answer its peers within cluster-node-timeout. */
export function migrateBudgetMs(ctx: ExecCtx): number {
  return Math.max(100, Math.min(MAX_MIGRATE_TIMEOUT_MS, Math.floor(ctx.nodeTimeoutMs / 4)));
}

/** The AUTH part of a MIGRATE command: the source logs in to the target with the same credentials. */
export function migrateAuth(ctx: ExecCtx): string[] {
  const { user, password } = ctx.access.credentials ?? {};
  if (!password) return [];
  return user ? ["auth2", user, password] : ["auth", password];
}

/** The masters a window moves between now: the source's (null once it merged into another master) and the target's. */
export interface Ends {
  src: NodeRef | null;
  s: NodeEntry | null;
  dst: NodeRef;
  d: NodeEntry;
}

export async function migrateSlots(all: MigrateStep[], ctx: ExecCtx): Promise<void> {
  // The server's own migration (Valkey 9+) where the plan chose it; key by key for the rest.
  const atomic = all.filter((st) => st.atomic);
  if (atomic.length > 0) {
    const ends = await resolveEnds(atomic[0]!, ctx);
    await failoverAware(atomic, ends, ctx, () => migrateSlotsAtomic(atomic, ends, ctx));
  }
  const steps = all.filter((st) => !st.atomic);
  if (steps.length === 0) return;
  const ends = await resolveEnds(steps[0]!, ctx);
  await failoverAware(steps, ends, ctx, () => moveWindow(steps, ends, ctx));
}

/** Runs a window's moves; an error the protocol does not expect, while the cluster failed a shard of the window over, runs the window again. */
async function failoverAware(steps: MigrateStep[], ends: Ends, ctx: ExecCtx, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (err instanceof ClusterChangedError || transientCause(err)) throw err;
    // An error the protocol does not expect (MOVED, READONLY, "SETSLOT only with masters") most often
    // means the cluster failed a shard over under the window: then the window runs again from the new master.
    const now = await resolveEnds(steps[0]!, ctx).catch(() => null);
    if (now && (now.src?.id !== ends.src?.id || now.dst.id !== ends.dst.id)) {
      throw new FailoverPendingError(`the cluster failed a shard over during the window (${describe(err)}); going on with ${now.src?.addr ?? "-"} -> ${now.dst.addr}`);
    }
    throw err;
  }
}

/** Who serves the shards of the window's source and target now (safety rule 3), with a note for each failover. */
export async function resolveEnds(first: MigrateStep, ctx: ExecCtx): Promise<Ends> {
  const [s0, d0] = await Promise.all([ctx.reads.selfOrNull(first.from), ctx.reads.selfOrNull(first.to)]);
  if (s0?.role === "master" && d0?.role === "master") return { src: first.from, s: s0, dst: first.to, d: d0 };
  const views = [...(await ctx.reads.readCluster()).views.values()];
  const who = (ref: NodeRef, own: NodeEntry | null): ShardServer => shardServer(ref, ctx.replicas.get(ref.id) ?? new Set(), own, views);
  const [srcWho, dstWho] = [who(first.from, s0), who(first.to, d0)];

  if (dstWho.kind === "waiting") throw new FailoverPendingError(`the target of slot moves: ${dstWho.reason}`);
  if (dstWho.kind === "merged") {
    throw new ClusterChangedError(
      `the target of slot moves ${first.to.addr} is now a replica of ${nameIn(views, dstWho.into)}, which is not one of its replicas: the cluster changed outside this apply. Check it with \`shardform check\`, then plan again.`,
    );
  }
  let [dst, d] = [first.to, d0];
  if (dstWho.kind === "failed-over") {
    [dst, d] = [dstWho.to, await ctx.reads.selfOf(dstWho.to)];
    ctx.noteOnce(`the cluster failed the target ${first.to.addr} over to its replica ${dst.addr}: slot moves into that shard go on into ${dst.addr}`);
  }
  if (d?.role !== "master") throw new FailoverPendingError(`${dst.addr}, which serves the target's shard, is not a master yet`);

  if (srcWho.kind === "waiting") throw new FailoverPendingError(`the source of slot moves: ${srcWho.reason}`);
  if (srcWho.kind === "merged") return { src: null, s: null, dst, d };
  if (srcWho.kind === "self") return { src: first.from, s: s0, dst, d };
  const s = await ctx.reads.selfOf(srcWho.to);
  if (s.role !== "master") throw new FailoverPendingError(`${srcWho.to.addr}, which serves the source's shard, is not a master yet`);
  ctx.noteOnce(`the cluster failed the source ${first.from.addr} over to its replica ${srcWho.to.addr}: slot moves out of that shard go on from ${srcWho.to.addr}`);
  return { src: srcWho.to, s, dst, d };
}

function nameIn(views: readonly NodeEntry[][], id: string | null): string {
  if (!id) return "no node";
  return views.flat().find((e) => e.id === id && !e.flags.includes("myself"))?.addr ?? id.slice(0, 8);
}

async function moveWindow(steps: MigrateStep[], { src, s, dst, d }: Ends, ctx: ExecCtx): Promise<void> {
  const first = steps[0]!;
  let dstView = await ctx.reads.view(dst.addr);
  if (src && s && (await epochsApart(ctx, src, dst, dstView))) dstView = await ctx.reads.view(dst.addr);
  const fromSrc = s ? steps.filter((st) => owns(s, st.slot)) : [];
  const elsewhere = steps.filter((st) => !fromSrc.includes(st));
  for (const st of elsewhere) {
    if (!owns(d, st.slot) && !d.importing.some((m) => m.slot === st.slot)) {
      const owner = dstView.find((e) => e.role === "master" && owns(e, st.slot));
      throw new ClusterChangedError(
        `slot ${st.slot} should be on ${src?.addr ?? first.from.addr} or ${dst.addr}, but ${owner ? `${owner.addr} owns it` : "no master owns it"}: the cluster changed outside this apply. ` +
          `Check it with \`shardform check\`, then plan again.`,
      );
    }
  }

  if (src && s) {
    // 0. A target importing a slot from another node than this source (the source was failed over during
    // the move) ignores every claim on that slot, and once the old source became a replica its slots are
    // unassigned in the target's table: it reports cluster_state:fail and refuses every key. Close that
    // import and tell it who owns the slot now, before importing from the source.
    const stale = fromSrc.filter((st) => d.importing.some((m) => m.slot === st.slot && m.peerId !== src.id));
    await pipelineOk(ctx, dst, steps, stale.flatMap((st) => [["cluster", "setslot", st.slot, "stable"], ["cluster", "setslot", st.slot, "node", src.id]]), "SETSLOT STABLE and NODE <source>");

    // 1. open the slots the source still owns
    await pipelineOk(ctx, dst, steps, fromSrc.filter((st) => !owns(d, st.slot) && !importingFrom(d, st.slot, src.id)).map((st) => ["cluster", "setslot", st.slot, "importing", src.id]), "SETSLOT IMPORTING");
    await pipelineOk(ctx, src, steps, fromSrc.filter((st) => !migratingTo(s, st.slot, dst.id)).map((st) => ["cluster", "setslot", st.slot, "migrating", dst.id]), "SETSLOT MIGRATING");

    // 2. empty them (and any slot the source no longer owns but still holds keys of)
    let toDrain = fromSrc;
    if (elsewhere.length > 0) {
      const counts = await (await ctx.conn(src.addr)).pipeline(elsewhere.map((st) => ["cluster", "countkeysinslot", st.slot]));
      toDrain = [...fromSrc, ...elsewhere.filter((_, k) => Number(counts[k]![1] ?? 0) > 0)];
    }
    // MIGRATE is run by the source: the target's address as the source knows it.
    const at = (await ctx.reads.view(src.addr)).find((e) => e.id === dst.id)?.addr ?? dst.addr;
    for (let round = 0; toDrain.length > 0; round++) {
      if (round > 0) ctx.emit({ type: "note", message: `slot(s) ${toDrain.map((st) => st.slot).join(", ")} still had keys on ${src.addr} when checked before the handover; moving them too` });
      // The pair's next window may open as soon as this one's last MIGRATE is queued (see drain).
      await drain(toDrain, ctx, src, dst, at, () => ctx.onWindowDrained?.(first.id));
      await failpoint(ctx, "migrate:after-drain");
      if (ctx.stop === "hard") return;
      // 3. nothing of these slots may be left on any master but the target
      const left = await keysElsewhere(steps, ctx, src, dst, first);
      if (left.length > 0 && round + 1 >= MAX_DRAIN_ROUNDS) {
        throw new FailoverPendingError(`slot(s) ${left.map((st) => st.slot).join(", ")} kept getting keys on ${src.addr} after ${MAX_DRAIN_ROUNDS} drains`);
      }
      toDrain = left;
    }
  } else {
    await keysElsewhere(steps, ctx, null, dst, first);
  }
  // The source may move the pair's next window while this one is handed over.
  ctx.onWindowDrained?.(first.id);

  // 3b. a replica of the target has every key it received, before anything depends on the target alone
  // (a target that stops answering meanwhile is for targetAnswers to deal with)
  await failpoint(ctx, "migrate:before-replica-wait");
  await replicasHaveKeys(ctx, dst).catch(() => undefined);

  // 4. hand the slots over: target, source, every other master. The target must answer just before:
  // a SETSLOT NODE sent to a paused target runs when it resumes, possibly after its replica took the
  // shard over, and then claims the slot for the old master with a new config epoch.
  await targetAnswers(ctx, dst);
  await pipelineOk(ctx, dst, steps, steps.filter((st) => !owns(d, st.slot) || d.importing.some((m) => m.slot === st.slot)).map((st) => ["cluster", "setslot", st.slot, "node", dst.id]), "SETSLOT NODE");
  // SETSLOT NODE bumps the target's config epoch only for a slot it was importing. A target whose epoch
  // is not above the source's (a replica promoted in the source's place has the newest epoch) would
  // lose the slots again to a claim the source sent before its own SETSLOT NODE, and the members that
  // heard that claim last would go on naming the source as owner while the source names none.
  if (src && s) {
    const [mine, theirs] = await Promise.all([ctx.reads.clusterInfo(dst.addr), ctx.reads.clusterInfo(src.addr)]);
    if (Number(mine["cluster_my_epoch"] ?? 0) <= Number(theirs["cluster_my_epoch"] ?? 0)) await (await ctx.conn(dst.addr)).call("cluster", "bumpepoch").catch(() => undefined);
  }
  for (const st of steps) ctx.emit({ type: "setslot-node", slot: st.slot, phase: "target" });
  await failpoint(ctx, "migrate:after-target-setslot");
  if (src && s) {
    await pipelineOk(ctx, src, steps, steps.filter((st) => owns(s, st.slot) || s.migrating.some((m) => m.slot === st.slot)).map((st) => ["cluster", "setslot", st.slot, "node", dst.id]), "SETSLOT NODE", true);
  }
  for (const st of steps) ctx.emit({ type: "setslot-node", slot: st.slot, phase: "source" });
  await failpoint(ctx, "migrate:after-source-setslot");
  const others = dstView.filter((e) => e.role === "master" && e.id !== src?.id && e.id !== dst.id && !e.flags.includes("fail") && !e.flags.includes("handshake") && !e.flags.includes("noaddr"));
  await Promise.all(others.map((m) => pipelineOk(ctx, { id: m.id, addr: m.addr }, steps, steps.map((st) => ["cluster", "setslot", st.slot, "node", dst.id]), "SETSLOT NODE", true)));
  for (const st of steps) ctx.emit({ type: "setslot-node", slot: st.slot, phase: "others" });

  await confirmHandover(steps, ctx, src, dst, others);
}

/**
 * Before a window opens: no other master shares the source's or the target's config epoch. Redis
 * settles such a collision by gossip, by bumping one of the two, and a source bumped above the target
 * after the target took a slot would take it back, and the target would delete that slot's keys (a
 * master that loses a slot it holds keys of to a claim with a higher epoch deletes them), while the
 * source has already given them away. A cluster whose masters were all bumped at once (made by a tool
 * that does so) can take minutes to settle: the window waits, saying why. `view` is the target's,
 * just read; true when the window waited (the caller reads it again).
 */
async function epochsApart(ctx: ExecCtx, src: NodeRef, dst: NodeRef, view: NodeEntry[]): Promise<boolean> {
  const clashIn = (view: NodeEntry[]): string | null => {
    // Masters without slots claim nothing; a target without slots yet is given a fresh epoch by its first SETSLOT NODE.
    const masters = view.filter((e) => e.role === "master" && e.slots.length > 0 && !e.flags.includes("fail") && !e.flags.includes("handshake"));
    for (const end of [src, dst]) {
      const me = masters.find((e) => e.id === end.id);
      const twin = me && masters.find((e) => e.id !== me.id && e.configEpoch === me.configEpoch);
      if (me && twin) return `${end.addr} and ${twin.addr} have the same config epoch ${me.configEpoch}`;
    }
    return null;
  };
  const first = clashIn(view);
  if (first === null) return false;
  ctx.noteOnce(`config epochs collide (${first}); slot moves wait until the cluster has settled them`);
  await ctx.waits.waitUntil("no master shares its config epoch with the source or the target of a slot move", async () => clashIn(await ctx.reads.view(dst.addr)));
  return true;
}

/** How long the handover waits for a replica of the target to acknowledge the keys it received (WAIT). */
const REPLICA_ACK_MS = 5000;

/**
 * Before the handover: a replica of the target acknowledges every write the target has had (WAIT 1),
 * so that a failover of the target from then on promotes a replica that holds the window's keys (the
 * source deleted its copies as MIGRATE moved them; Redis promotes the replica with the most data). A
 * target without a replica online waits for nothing; when none acknowledges within REPLICA_ACK_MS
 * (a replica still syncing, or stopped), a note names the target and the move goes on.
 */
async function replicasHaveKeys(ctx: ExecCtx, dst: NodeRef): Promise<void> {
  const info = await ctx.reads.info(dst.addr, "replication", 2000);
  // A replica counts when it is online and acknowledged within the last 2 s (replicas acknowledge every
  // second): one that stopped stays "online" on its master until repl-timeout, and WAIT would only time out.
  const live = listedReplicas(info).filter((r) => r.state === "online" && r.lag <= 2);
  if (live.length === 0) return;
  const acked = Number(await (await ctx.conn(dst.addr)).callWithin(REPLICA_ACK_MS + 2000, "wait", 1, REPLICA_ACK_MS));
  if (acked < 1) {
    ctx.noteOnce(`no replica of ${dst.addr} acknowledged the keys moved into it within ${REPLICA_ACK_MS / 1000} s; the move goes on, and until one catches up a failover of ${dst.addr} would lose them`);
  }
}

/**
 * Safety rule 2, before the handover: COUNTKEYSINSLOT on every master that owns, claims or has a slot
 * of the window open in any member's view, the target excepted. Returns the window's slots that still
 * have keys on `src` (to drain again). Keys anywhere else: a node the cluster promoted meanwhile is
 * waited for (the window runs again from it); any other node stops apply, naming it.
 */
async function keysElsewhere(steps: MigrateStep[], ctx: ExecCtx, src: NodeRef | null, dst: NodeRef, first: MigrateStep): Promise<MigrateStep[]> {
  const read = await ctx.reads.readCluster();
  const views = [...read.views.values()];
  const selves = read.selves;
  const bySlot = slotsClaimants(steps.map((st) => st.slot), dst.id, views, selves);
  const holders = new Set([...bySlot.values()].flat());
  const counts = new Map<string, Map<number, number>>();
  await Promise.all(
    [...holders].map(async (id) => {
      const self = selves.get(id);
      const addr = self ? (read.members.find((m) => m.id === id)?.addr ?? self.addr) : undefined;
      const slots = steps.filter((st) => bySlot.get(st.slot)!.includes(id)).map((st) => st.slot);
      let res: (Error | number | string | null)[] = [];
      let loading = false;
      let failed: Error | null = null;
      if (addr) {
        try {
          const asked = [["info", "persistence"], ...slots.map((x) => ["cluster", "countkeysinslot", x])];
          res = (await (await ctx.conn(addr)).laneSend([encodeCommands(asked)], asked.length, `COUNTKEYSINSLOT of ${slots.length} slot(s)`, () => asked)).map(frameValue);
          loading = /(^|\n)loading:1/.test(String(res[0] ?? ""));
        } catch (err) {
          failed = err as Error;
        }
      }
      const m = new Map<number, number>();
      slots.forEach((x, k) => {
        const n = res[k + 1] ?? failed ?? new Error("no answer");
        const c = keyCount(failed ? undefined : self, loading, n instanceof Error ? n : Number(n));
        if ("unusable" in c) {
          throw new FailoverPendingError(`slot ${x} cannot be handed to ${dst.addr} yet: ${self?.addr ?? id.slice(0, 8)} claims it and its key count is no proof (${c.unusable})`);
        }
        if (c.keys > 0) m.set(x, c.keys);
      });
      counts.set(id, m);
    }),
  );
  const again: MigrateStep[] = [];
  for (const st of steps) {
    for (const id of bySlot.get(st.slot)!) {
      const n = counts.get(id)?.get(st.slot) ?? 0;
      if (n === 0) continue;
      if (id === src?.id) {
        again.push(st);
        continue;
      }
      const addr = selves.get(id)?.addr ?? id.slice(0, 8);
      if (id === first.from.id || ctx.replicas.get(first.from.id)?.has(id)) {
        throw new FailoverPendingError(`${addr} (of the source's shard) holds ${n} key(s) of slot ${st.slot} while the window moves from ${src?.addr ?? "-"}: waiting for the cluster to settle who serves that shard`);
      }
      throw new ClusterChangedError(
        `refusing to hand slot ${st.slot} to ${dst.addr}: ${addr} holds ${n} key(s) of it, and clients would no longer read them. ` +
          `The cluster changed outside this apply; check it with \`shardform check\`, then plan again.`,
      );
    }
  }
  return [...new Set(again)];
}

/**
 * The target must own every slot of the window after SETSLOT NODE. Rarely, a claim on a slot with a
 * higher config epoch (a ping from the source sent before its own SETSLOT NODE, when the target's
 * epoch was not bumped) takes a slot back from the target. When the slot is empty on the source (its
 * keys are on the target), the target's epoch is bumped so that its claim wins, and the slot is handed
 * over again; only a slot that still does not move is an error, naming what the target sees.
 */
async function confirmHandover(steps: MigrateStep[], ctx: ExecCtx, src: NodeRef | null, dst: NodeRef, others: NodeEntry[]): Promise<void> {
  let missing: MigrateStep[] = [];
  for (let attempt = 0; ; attempt++) {
    const after = await ctx.reads.selfOf(dst);
    missing = steps.filter((st) => !owns(after, st.slot));
    if (missing.length === 0) return;
    if (attempt >= 2 || !src) break;
    const counts = await (await ctx.conn(src.addr)).pipeline(missing.map((st) => ["cluster", "countkeysinslot", st.slot]));
    if (counts.some(([err, n]) => err || Number(n) > 0)) break;
    ctx.emit({ type: "note", message: `${dst.addr} lost slot(s) ${missing.map((m) => m.slot).join(", ")} right after SETSLOT NODE to a claim with a higher config epoch; bumping its epoch and handing them over again` });
    // Without the right to bump (CLUSTER BUMPEPOCH has no harmless probe), the slots are still handed over again.
    await (await ctx.conn(dst.addr)).call("cluster", "bumpepoch").catch(() => undefined);
    const again = missing.map((st) => ["cluster", "setslot", st.slot, "node", dst.id]);
    await pipelineOk(ctx, dst, missing, again, "SETSLOT NODE");
    await pipelineOk(ctx, src, missing, again, "SETSLOT NODE", true);
    await Promise.all(others.map((m) => pipelineOk(ctx, { id: m.id, addr: m.addr }, missing, again, "SETSLOT NODE", true)));
  }
  const view = await ctx.reads.view(dst.addr);
  const me = view.find((e) => e.flags.includes("myself"));
  const slot = missing[0]!.slot;
  const owner = view.find((e) => e.role === "master" && owns(e, slot));
  throw new StepFailedError(
    missing[0]!.id,
    "migrate-slot",
    `${dst.addr} does not own slot(s) ${missing.map((m) => m.slot).join(", ")} after SETSLOT NODE (in its view slot ${slot} belongs to ${owner ? `${owner.addr}, config epoch ${owner.configEpoch}` : "no master"}; its own config epoch is ${me?.configEpoch ?? "?"}): ` +
      `the cluster changed during the move; check it with \`shardform check\` and plan again`,
  );
}

/**
 * Connections a window's SETSLOT commands to one node are spread over. Valkey 8 replicates SETSLOT and
 * blocks each one until the node's replicas acknowledge it: on one connection a pipeline waits once
 * per command, while clients blocked together are released together. Redis does not wait.
 */
const SETSLOT_LANES = 8;

/** SETSLOT commands (`["cluster", "setslot", slot, ...]`, independent of each other) to one node; the first error stops the window. */
async function pipelineOk(ctx: ExecCtx, node: NodeRef, steps: MigrateStep[], cmds: (string | number)[][], what: string, nowReplicaOk = false): Promise<void> {
  if (cmds.length === 0) return;
  const lanes = Math.min(SETSLOT_LANES, Math.ceil(cmds.length / 16));
  const size = Math.ceil(cmds.length / lanes);
  const parts = Array.from({ length: lanes }, (_, k) => cmds.slice(k * size, (k + 1) * size)).filter((p) => p.length > 0);
  // On each connection's raw lane: SETSLOT answers +OK or an error, nothing to parse.
  const res = (
    await Promise.all(
      parts.map(async (part, k) => {
        const frames = await (await ctx.conn(node.addr, k)).laneSend([encodeCommands(part)], part.length, `${part.length} SETSLOT(s) (${what})`, () => part);
        return frames.map(frameError);
      }),
    )
  ).flat();
  const failed = res.findIndex((err) => err && !(nowReplicaOk && NOW_REPLICA.test(err.message)));
  if (failed < 0) return;
  const err = res[failed]!;
  if (transientCause(err)) throw err;
  const slot = Number(cmds[failed]![2]);
  if (/Target node is not a master/.test(err.message)) {
    // Right after a failover the node may not have learnt yet that the shard's new master is one: it will.
    throw new FailoverPendingError(`${node.addr} does not see the other side of slot ${slot} as a master yet (${what}: ${err.message}); waiting for it to learn of the failover`);
  }
  const unknown = /I don't know about node ([0-9a-f]{40})/.exec(err.message);
  if (unknown) {
    throw new ClusterChangedError(
      `${node.addr} does not know node ${unknown[1]!.slice(0, 8)} any more (${what}, slot ${slot}): it was forgotten during apply (a ban from a recent CLUSTER FORGET spreading?). Check the cluster with \`shardform check\`, then plan again`,
    );
  }
  const step = steps.find((st) => st.slot === slot) ?? steps[0]!;
  throw new StepFailedError(step.id, step.kind, `${what} on ${node.addr} failed for slot ${slot}: ${err.message}`);
}

/** Throws a (transient) NodeTimeoutError when the target does not answer a PING quickly. */
async function targetAnswers(ctx: ExecCtx, dst: NodeRef): Promise<void> {
  try {
    await (await ctx.conn(dst.addr)).callWithin(2000, "ping");
  } catch (err) {
    if (err instanceof NodeTimeoutError) throw err;
    throw new NodeTimeoutError(dst.addr, "PING", 2000);
  }
}

/**
 * MIGRATE commands one source has in flight at most (over all its windows). A MIGRATE blocks its source
 * until the target answers or the timeout passes: with a target that stopped answering, each command
 * in flight blocks the source for its whole timeout, one after the other. In-flight count x timeout is
 * kept within half of cluster-node-timeout, lest the cluster fail over a source nobody touched.
 */

/** The timeout of pipelined MIGRATEs: MIGRATES_IN_FLIGHT of them block a source for at most half of cluster-node-timeout. */
export function pipelinedMigrateTimeoutMs(ctx: ExecCtx): number {
  return Math.max(20, Math.min(ctx.options.migrateTimeoutMs, migrateBudgetMs(ctx), Math.floor(ctx.nodeTimeoutMs / 2 / MIGRATES_IN_FLIGHT)));
}

/**
 * Empties every slot, all of them in flight: each pass sends one GETKEYSINSLOT per slot not yet empty
 * in one pipeline, then one MIGRATE ... KEYS per slot that had keys, MIGRATES_IN_FLIGHT at a time per
 * source (under --max-latency-ms, the governor's pace: fewer slots, keys and MIGRATEs at a time). A
 * slot is done when GETKEYSINSLOT finds it empty (new keys of a MIGRATING slot go to the target, so it
 * stays empty). Before each pass the target must answer a PING: a target that stopped answering gets
 * no more MIGRATEs (the window waits and is retried). Both commands go on the source's raw lane
 * (raw-lane.ts): the keys GETKEYSINSLOT names go back out in the MIGRATE as the bytes it sent them in.
 */
async function drain(steps: MigrateStep[], ctx: ExecCtx, src: NodeRef, dst: NodeRef, at: string, lastQueued?: () => void): Promise<void> {
  const c = await ctx.conn(src.addr);
  const { host, port } = parseNodeAddr(at);
  const timeout = pipelinedMigrateTimeoutMs(ctx);
  const head = ["migrate", host, port, "", 0, timeout, ...migrateAuth(ctx), "keys"];
  let pending = steps;
  while (pending.length > 0) {
    if (ctx.stop === "hard") return;
    await targetAnswers(ctx, dst);
    // Ungoverned: every slot's GETKEYSINSLOT in one pipeline, MIGRATES_IN_FLIGHT at a time. Under
    // --max-latency-ms: as many slots at a time as MIGRATEs may run back to back, at its keys per MIGRATE.
    const burst = ctx.burst();
    const inFlight = burst?.inFlight ?? MIGRATES_IN_FLIGHT;
    const count = burst?.keys ?? ctx.options.pipeline;
    const group = burst ? inFlight : pending.length;
    const retry: MigrateStep[] = [];
    const next: MigrateStep[] = [];
    for (let g = 0; g < pending.length; g += group) {
      const part = pending.slice(g, g + group);
      const asked = part.map((st) => ["cluster", "getkeysinslot", st.slot, count]);
      const found = await c.laneSend([encodeCommands(asked)], part.length, `GETKEYSINSLOT of ${part.length} slot(s)`, () => asked);
      const withKeys: { s: MigrateStep; n: number; keys: Buffer }[] = [];
      found.forEach((frame, k) => {
        const { count: n, elements } = arrayFrame(frame);
        if (n > 0) withKeys.push({ s: part[k]!, n, keys: elements });
      });
      for (let i = 0; i < withKeys.length; i += inFlight) {
        const chunk = withKeys.slice(i, i + inFlight);
        await ctx.pace(chunk.reduce((n, w) => n + w.n, 0));
        // The first pass's last MIGRATEs: what is left of the window (the pass that finds every slot
        // empty, the checks, the handover) does not keep the source busy, so the next window may open.
        if (pending === steps && g + group >= pending.length && i + inFlight >= withKeys.length) lastQueued?.();
        const moved = await ctx.oneAtATime(`migrate ${src.id}`, () =>
          c.laneSend(
            chunk.flatMap((w) => commandWithRaw(head, w.n, w.keys)),
            chunk.length,
            `${chunk.length} MIGRATE(s) to ${dst.addr}`,
            () => chunk.map((w) => [...head, `<${w.n} key(s) of slot ${w.s.slot}>`]),
            10_000 + 2 * timeout * chunk.length,
          ),
        );
        moved.forEach((frame, k) => {
          const { s, n } = chunk[k]!;
          if (frameError(frame)) retry.push(s);
          else ctx.emit({ type: "keys-moved", slot: s.slot, keys: n });
        });
      }
      next.push(...withKeys.map((w) => w.s));
    }
    if (next.length === 0) return;
    for (const s of retry) await moveKeysOneByOne(s, ctx, src, dst, at, timeout);
    pending = next;
    await failpoint(ctx, "migrate:drain-pass");
  }
}

/**
 * The careful path for one slot whose batch failed: smaller batches, then key by key, to find the key
 * that does not move and deal with it:
 *  - BUSYKEY (a copy already on the target, e.g. from a MIGRATE that timed out): replaced when
 *    identical, or while the slot is MIGRATING on the source (its copy is the one clients read: rule 8);
 *    otherwise a differing copy stops apply, naming the key;
 *  - a timeout: first make sure the target answers at all (else the unit is retried later), then grow
 *    the timeout fourfold up to the budget; a key that still does not move stops apply with its size;
 *  - any other refusal (e.g. the target's maxmemory) stops apply, naming the key, its size and the reason.
 */
async function moveKeysOneByOne(s: MigrateStep, ctx: ExecCtx, from: NodeRef, to: NodeRef, at: string, startTimeout: number): Promise<void> {
  const src = await ctx.conn(from.addr);
  const { host, port } = parseNodeAddr(at);
  const auth = migrateAuth(ctx);
  const budget = migrateBudgetMs(ctx);
  let timeout = startTimeout;
  let batch = ctx.options.pipeline;
  const replaceable = new Set<string>();
  for (;;) {
    if (ctx.stop === "hard") return;
    const keys = (await src.callBuffer("cluster", "getkeysinslot", s.slot, batch)) as Buffer[];
    if (keys.length === 0) return;
    const replace = keys.every((k) => replaceable.has(k.toString("hex"))) ? ["replace"] : [];
    try {
      await ctx.pace(keys.length);
      await ctx.oneAtATime(`migrate ${from.id}`, () => src.callBufferWithin(10_000 + 2 * timeout, "migrate", host, port, "", 0, timeout, ...replace, ...auth, "keys", ...keys));
      ctx.emit({ type: "keys-moved", slot: s.slot, keys: keys.length });
      batch = ctx.options.pipeline;
    } catch (err) {
      const msg = describe(err);
      if (transientCause(err)) throw err;
      // The source (READONLY, MOVED) or the target (its reply, quoted) is a replica now: the cluster
      // failed a shard over under the window, which runs again with the shards' new masters.
      if (/READONLY|^MOVED |replied with error: (READONLY|MOVED)/.test(msg)) throw new FailoverPendingError(`MIGRATE from ${from.addr} to ${to.addr}: ${msg}`);
      if (/NOPERM/.test(msg)) {
        const user = ctx.access.credentials?.user ?? "default";
        throw new PermissionError(
          to.addr,
          `MIGRATE from ${from.addr} to ${to.addr} was refused: ${msg}. MIGRATE logs in to the target as ACL user "${user}", which needs +restore-asking, +asking and write access to the keys there (see the README's "ACL users"). Nothing of slot ${s.slot} was lost; grant it, then run apply again`,
        );
      }
      if (/BUSYKEY/.test(msg)) {
        for (const k of await replaceableKeys(s, ctx, from, to, keys)) replaceable.add(k.toString("hex"));
        continue;
      }
      if (keys.length > 1) {
        batch = 1; // one key at a time, to find the key that fails
        continue;
      }
      const key = keys[0]!;
      const timedOut = /IOERR|timeout/i.test(msg);
      if (timedOut) await targetAnswers(ctx, to);
      if (timedOut && timeout < budget) {
        timeout = Math.min(timeout * 4, budget);
        ctx.emit({ type: "note", message: `slot ${s.slot}: MIGRATE of key "${key.toString()}" timed out; retrying with a ${(timeout / 1000).toFixed(1)} s timeout` });
        continue;
      }
      const size = await keySize(ctx, from.addr, key);
      if (timedOut && Number(size) < SLOW_TARGET_KEY_BYTES) {
        // A small key is no reason for a timeout: the target stalled (a manual failover pauses its
        // writes until its replica takes over). If the roles changed, the window runs again with the
        // shards' new masters; otherwise the unit is retried later, with no MIGRATE piled onto it.
        const t = await ctx.reads.selfOf(to).catch(() => null);
        if (t && t.role !== "master") throw new FailoverPendingError(`MIGRATE from ${from.addr} to ${to.addr}: ${to.addr} is a replica now`);
        throw new NodeTimeoutError(to.addr, `the RESTORE of a ${String(size)}-byte key of slot ${s.slot} (MIGRATE from ${from.addr})`, timeout);
      }
      const what = `key "${key.toString()}" (${String(size)} bytes) of slot ${s.slot} did not move from ${from.addr} to ${to.addr}`;
      throw new StepFailedError(
        s.id,
        s.kind,
        timedOut
          ? `${what} within ${(timeout / 1000).toFixed(1)} s: ${msg}. It is still on ${from.addr}. MIGRATE blocks the source while it runs, so its timeout is kept under a quarter of ` +
              `cluster-node-timeout (${ctx.nodeTimeoutMs} ms) lest the cluster fail the source over. Raise cluster-node-timeout on the nodes (or make the key smaller), then run apply again to continue this slot.`
          : `${what}: ${msg}. It is still on ${from.addr}. Fix the cause on the target (e.g. its maxmemory), then run apply again to continue this slot.`,
      );
    }
  }
}

/**
 * A key this small that does not move within the timeout says the target stalled, not that the key is
 * big: it moves in well under a millisecond on any link (1 MiB at 1 Gbit/s: 8 ms).
 */
const SLOW_TARGET_KEY_BYTES = 1 << 20;

/**
 * A key's size for a message: MEMORY USAGE, on a second connection if the first broke. A MIGRATE that
 * blocked its source too long may have left the cluster down for a moment (CLUSTERDOWN refuses key
 * commands), so transient answers are waited out for a few seconds before the size is given up.
 */
async function keySize(ctx: ExecCtx, addr: string, key: Buffer): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return String(await (await ctx.conn(addr, attempt % 2)).callBufferWithin(5_000, "memory", "usage", key, "samples", 0));
    } catch (err) {
      // The first connection may be the one that broke: the second is tried at once.
      if (attempt > 0 && (!transientCause(err) || Date.now() >= deadline)) return `unknown (MEMORY USAGE failed: ${describe(err)})`;
      if (attempt > 0) await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * BUSYKEY: a key already exists on the target, e.g. copied there by a MIGRATE that timed out or a
 * run that crashed. Returns the keys that may be replaced on the target: those whose copy there is the
 * same as the source's (or absent), and, while the slot is MIGRATING on the source toward this target,
 * those whose copy differs: clients were served the source's copy (safety rule 8, busyKeyWinner), and
 * a note counts them. Otherwise a copy that differs stops apply, naming the key.
 */
async function replaceableKeys(s: MigrateStep, ctx: ExecCtx, from: NodeRef, to: NodeRef, keys: Buffer[]): Promise<Buffer[]> {
  const src = await ctx.conn(from.addr);
  const dst: NodeClient = await ctx.conn(to.addr);
  const same: Buffer[] = [];
  let open: boolean | undefined;
  let replaced = 0;
  for (const key of keys) {
    // The MIGRATE that answered BUSYKEY moved the other keys of its batch: the source answers ASK for those.
    const here = (await src.callBuffer("dump", key).catch((err: Error) => {
      if (/^ASK /.test(err.message)) return null;
      throw err;
    })) as Buffer | null;
    if (here === null) continue; // gone from the source: nothing to move
    const [, [dumpErr, there]] = (await dst.pipelineBuffer([["asking"], ["dump", key]])) as [[Error | null, unknown], [Error | null, Buffer | null]];
    if (dumpErr) throw dumpErr;
    if (there !== null && Buffer.compare(here, there) !== 0) {
      open ??= migratingTo(await ctx.reads.self(from.addr), s.slot, to.id);
      if (busyKeyWinner(open) === "source") {
        replaced++;
        same.push(key);
        continue;
      }
      throw new StepFailedError(
        s.id,
        s.kind,
        `key "${key.toString()}" of slot ${s.slot} exists on both ${from.addr} and ${to.addr} with different values. ` +
          `shardform will not overwrite either. Decide which value is right, delete the other copy by hand, then run apply again.`,
      );
    }
    same.push(key);
  }
  if (replaced > 0) {
    ctx.emit({
      type: "note",
      message:
        `slot ${s.slot}: ${replaced} key(s) were on both ${from.addr} and ${to.addr} with different values; the copy on ${from.addr}, which clients were served while the slot was MIGRATING, ` +
        `replaces the older one on ${to.addr} (left there by a MIGRATE that timed out)`,
    });
  }
  return same;
}
