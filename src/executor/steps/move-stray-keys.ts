/**
 * move-stray-keys (safety rule 9): keys of a slot left on a master that does not own the slot, by an
 * earlier move of that slot out of its shard, go to the slot's owner:
 *   1. the holder is put IMPORTING the slot from the owner: Redis runs MIGRATE (and an ASKING command)
 *      on a node only for a slot it owns or has open, and nobody is sent to an importing node unasked;
 *   2. GETKEYSINSLOT + MIGRATE ... KEYS without REPLACE, until the slot is empty on the holder. A batch
 *      answered BUSYKEY moved its other keys; for each key left, the owner's copy is kept (it got every
 *      write since the move) and the stray copy is deleted (counted in a note);
 *   3. the holder's import is closed (SETSLOT STABLE) once COUNTKEYSINSLOT says the slot is empty there.
 * With `drop` (a split shard's stale copies, rule 9 staleCopies): the same import is opened, the keys
 * are deleted (ASKING + DEL) instead of moved, once INFO replication shows again that the holder was
 * promoted from the owner's data.
 * Idempotent: run again (resume), it finds what is left and goes on.
 */
import { ClusterChangedError, FailoverPendingError, StepFailedError } from "../../errors.js";
import { describe, type NodeClient } from "../../redis/connect.js";
import { transientCause } from "../../redis/errors.js";
import { parseNodeAddr } from "../../redis/node-key.js";
import { parseInfo, replicationIds } from "../../redis/cluster-nodes.js";
import type { StepOf } from "../../plan/types.js";
import { ownsSlot, promotedFrom, staleCopiesGone } from "../../safety/rules.js";
import { StopRequested, type ExecCtx } from "../context.js";
import { failpoint } from "../failpoints.js";
import { migrateAuth, pipelinedMigrateTimeoutMs } from "./migrate-slots.js";

type StrayStep = StepOf<"move-stray-keys">;

export async function moveStrayKeys(steps: StrayStep[], ctx: ExecCtx): Promise<void> {
  for (const s of steps) await moveOne(s, ctx);
}

async function moveOne(s: StrayStep, ctx: ExecCtx): Promise<void> {
  const [me, owner] = await Promise.all([ctx.reads.selfOf(s.from), ctx.reads.selfOf(s.to)]);
  const changed = (why: string): ClusterChangedError =>
    new ClusterChangedError(`the stray keys of slot ${s.slot} on ${s.from.addr} were not moved: ${why}. The cluster changed since the plan: check it with \`shardform check\`, then plan again`);
  if (owner.role !== "master" || !ownsSlot(owner, s.slot)) throw changed(`${s.to.addr} no longer owns the slot`);
  if (owner.migrating.some((m) => m.slot === s.slot) || owner.importing.some((m) => m.slot === s.slot)) throw changed(`the slot is open on ${s.to.addr}`);
  if (me.role !== "master") {
    if (s.drop && staleCopiesGone(me, s.to.id)) {
      ctx.emit({ type: "note", message: `slot ${s.slot}: ${s.from.addr} is a replica of ${s.to.addr} now, so it holds ${s.to.addr}'s data and no stale copy is left to delete` });
      return;
    }
    throw changed(`${s.from.addr} is a replica now, holding its master's data`);
  }
  if (ownsSlot(me, s.slot)) throw changed(`${s.from.addr} owns the slot now`);
  if (me.migrating.some((m) => m.slot === s.slot) || me.importing.some((m) => m.slot === s.slot && m.peerId !== s.to.id)) throw changed(`the slot is open on ${s.from.addr}`);

  try {
    await act(s, ctx, me.importing.some((m) => m.slot === s.slot), changed);
  } catch (err) {
    if (err instanceof StopRequested || transientCause(err)) throw err;
    // The holder turned replica under the step (the cluster demoted it): a state that passes; run again,
    // the step then finds what the holder is (see above).
    const now = await ctx.reads.selfOf(s.from).catch(() => null);
    if (now && now.role !== "master") throw new FailoverPendingError(`${s.from.addr} became a replica of ${now.masterId?.slice(0, 8) ?? "-"} during the step (${describe(err)})`);
    throw err;
  }
}

/** The step's actions, once the checks passed; `importing`: the holder has the slot open already (resume). */
async function act(s: StrayStep, ctx: ExecCtx, importing: boolean, changed: (why: string) => ClusterChangedError): Promise<void> {
  const c = await ctx.conn(s.from.addr);
  const dst = await ctx.conn(s.to.addr);
  if (s.drop) {
    // Deleting is right only while the holder's copies are still the owner's past (rule 9, staleCopies).
    const [mine, theirs] = await Promise.all([c.call("info", "replication"), dst.call("info", "replication")]);
    if (!promotedFrom(replicationIds(parseInfo(String(mine))), replicationIds(parseInfo(String(theirs))))) throw changed(`${s.from.addr} is no longer a replica promoted from ${s.to.addr}'s data`);
  }
  if (!importing) await c.call("cluster", "setslot", s.slot, "importing", s.to.id);
  if (s.drop) return dropStale(s, c, ctx);
  const at = (await ctx.reads.view(s.from.addr)).find((e) => e.id === s.to.id)?.addr ?? s.to.addr;
  const { host, port } = parseNodeAddr(at);
  const timeout = pipelinedMigrateTimeoutMs(ctx);
  let moved = 0;
  let dropped = 0;
  for (;;) {
    if (ctx.stop === "hard") return;
    const keys = (await c.callBuffer("cluster", "getkeysinslot", s.slot, ctx.options.pipeline)) as Buffer[];
    if (keys.length === 0) break;
    await ctx.pace(keys.length);
    try {
      await ctx.oneAtATime(`migrate ${s.from.id}`, () => c.callBufferWithin(10_000 + 2 * timeout, "migrate", host, port, "", 0, timeout, ...migrateAuth(ctx), "keys", ...keys));
      moved += keys.length;
      ctx.emit({ type: "keys-moved", slot: s.slot, keys: keys.length });
      await failpoint(ctx, "strays:batch");
      continue;
    } catch (err) {
      if (transientCause(err)) throw err;
      if (!/BUSYKEY/.test(describe(err))) {
        throw new StepFailedError(s.id, s.kind, `MIGRATE of stray keys of slot ${s.slot} from ${s.from.addr} to ${s.to.addr} failed: ${describe(err)}. They are still on ${s.from.addr}; fix the cause, then run apply again`);
      }
    }
    // BUSYKEY: the batch's other keys moved; each key still here that the owner holds too loses to the owner's copy.
    for (const key of keys) {
      const [[, here]] = (await c.pipelineBuffer([["asking"], ["exists", key]])).slice(1) as [[Error | null, number]];
      if (Number(here) === 0) {
        moved++;
        continue;
      }
      const [err, there] = (await dst.pipelineBuffer([["exists", key]]))[0]!;
      if (err) throw err;
      if (Number(there) === 0) continue; // gone from the owner meanwhile: the next pass moves it
      const [[delErr]] = (await c.pipelineBuffer([["asking"], ["del", key]])).slice(1) as [[Error | null, unknown]];
      if (delErr) throw delErr;
      dropped++;
    }
  }
  const left = Number(await c.call("cluster", "countkeysinslot", s.slot));
  if (left > 0) throw new StepFailedError(s.id, s.kind, `${left} key(s) of slot ${s.slot} are still on ${s.from.addr} after moving its stray keys; run apply again`);
  await c.call("cluster", "setslot", s.slot, "stable");
  ctx.emit({
    type: "note",
    message:
      `slot ${s.slot}: ${moved} stray key(s) moved from ${s.from.addr} to its owner ${s.to.addr}` +
      (dropped > 0 ? `; ${dropped} key(s) ${s.to.addr} also held kept ${s.to.addr}'s copy, and the stray copy on ${s.from.addr} was deleted` : ""),
  });
}

/** Stale copies on a node of the owner's own shard (safety rule 9, split shard): deleted (ASKING + DEL), then the import closed. */
async function dropStale(s: StrayStep, c: NodeClient, ctx: ExecCtx): Promise<void> {
  let dropped = 0;
  for (;;) {
    if (ctx.stop === "hard") return;
    const keys = (await c.callBuffer("cluster", "getkeysinslot", s.slot, ctx.options.pipeline)) as Buffer[];
    if (keys.length === 0) break;
    await failpoint(ctx, "strays:drop");
    const res = await c.pipelineBuffer(keys.flatMap((k) => [["asking"], ["del", k]]));
    const err = res.find(([e]) => e)?.[0];
    if (err) throw new StepFailedError(s.id, s.kind, `deleting the stale keys of slot ${s.slot} on ${s.from.addr} failed: ${describe(err)}; run apply again`);
    dropped += keys.length;
  }
  await c.call("cluster", "setslot", s.slot, "stable");
  ctx.emit({ type: "note", message: `slot ${s.slot}: ${dropped} stale key(s) deleted on ${s.from.addr} (copies of ${s.to.addr}'s, which serves the slot)` });
}
