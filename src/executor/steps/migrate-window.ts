/**
 * The fast path for consecutive migrate-slot steps between one source and one target: the same
 * protocol as migrate-slot, each slot still in its order, but the control commands of a window of
 * slots travel in one pipeline per node:
 *   1. SETSLOT IMPORTING for every slot on the target, then SETSLOT MIGRATING for every slot on the source;
 *   2. all slots in flight: one pipeline of GETKEYSINSLOT for every slot not yet empty, then one
 *      pipeline of MIGRATE ... KEYS (one per slot that had keys), repeated until every slot is empty;
 *   3. SETSLOT NODE for every slot on the target, then on the source, then on every other master.
 * Every slot of the window is "in doubt" in the journal until the whole window is done; a slot found
 * in any state but "owned by the source" goes through the per-slot handler, which continues it.
 */
import { ClusterStateError, StepFailedError } from "../../errors.js";
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";
import { parseNodeAddr } from "../../redis/node-key.js";
import { NOW_REPLICA, migrateAuth, migrateSlot, moveKeys, otherMasters, owns } from "./migrate-slot.js";

type MigrateStep = Extract<Step, { kind: "migrate-slot" }>;


async function pipelineOk(ctx: ExecCtx, addr: string, cmds: (string | number)[][], what: string, step: MigrateStep, nowReplicaOk = false): Promise<void> {
  if (cmds.length === 0) return;
  const res = await (await ctx.conn(addr)).pipeline(cmds);
  const failed = res.findIndex(([err]) => err && !(nowReplicaOk && NOW_REPLICA.test(err.message)));
  if (failed >= 0) {
    throw new StepFailedError(step.id, step.kind, `${what} on ${addr} failed for slot ${String(cmds[failed]![2])}: ${res[failed]![0]!.message}`);
  }
}

export async function migrateWindow(steps: MigrateStep[], ctx: ExecCtx): Promise<void> {
  const first = steps[0]!;
  const [srcSelf, dstSelf] = await Promise.all([ctx.self(first.from.addr), ctx.self(first.to.addr)]);
  if (srcSelf.id !== first.from.id || dstSelf.id !== first.to.id) {
    throw new ClusterStateError(`${first.from.addr} or ${first.to.addr} now answers with another node id; the cluster changed, plan again`);
  }
  // Fast: the source still owns the slot (open flags may already be set). Anything else: per slot.
  const fast = steps.filter((s) => owns(srcSelf, s.slot) && !owns(dstSelf, s.slot));
  const slow = steps.filter((s) => !fast.includes(s));

  const importing = new Set(dstSelf.importing.map((m) => m.slot));
  const migrating = new Set(srcSelf.migrating.map((m) => m.slot));
  await pipelineOk(ctx, first.to.addr, fast.filter((s) => !importing.has(s.slot)).map((s) => ["cluster", "setslot", s.slot, "importing", first.from.id]), "SETSLOT IMPORTING", first);
  await pipelineOk(ctx, first.from.addr, fast.filter((s) => !migrating.has(s.slot)).map((s) => ["cluster", "setslot", s.slot, "migrating", first.to.id]), "SETSLOT MIGRATING", first);
  await moveKeysInFlight(fast, ctx);
  ctx.checkStop();
  for (const s of fast) ctx.emit({ type: "setslot-node", slot: s.slot, phase: "target" });
  await pipelineOk(ctx, first.to.addr, fast.map((s) => ["cluster", "setslot", s.slot, "node", first.to.id]), "SETSLOT NODE", first);
  for (const s of fast) ctx.emit({ type: "setslot-node", slot: s.slot, phase: "source" });
  await pipelineOk(ctx, first.from.addr, fast.map((s) => ["cluster", "setslot", s.slot, "node", first.to.id]), "SETSLOT NODE", first, true);
  const others = await otherMasters(first, ctx);
  await Promise.all(others.map((m) => pipelineOk(ctx, m.addr, fast.map((s) => ["cluster", "setslot", s.slot, "node", first.to.id]), "SETSLOT NODE", first, true)));
  for (const s of slow) await migrateSlot(s, ctx);
}

/**
 * Empties every slot of the window, all of them in flight: each pass sends one GETKEYSINSLOT per
 * slot not yet empty in one pipeline, then one MIGRATE ... KEYS per slot that had keys in a second.
 * A slot is done when GETKEYSINSLOT finds it empty (new keys of a MIGRATING slot go to the target,
 * so an empty slot stays empty). A MIGRATE that fails (BUSYKEY, a key too big for the timeout)
 * sends its slot through the one-slot loop, which knows how to deal with those.
 */
async function moveKeysInFlight(steps: MigrateStep[], ctx: ExecCtx): Promise<void> {
  if (steps.length === 0) return;
  const first = steps[0]!;
  const src = await ctx.conn(first.from.addr);
  const { host, port } = parseNodeAddr(first.to.addr);
  const auth = migrateAuth(ctx);
  let pending = steps;
  while (pending.length > 0) {
    ctx.checkStop();
    const found = await src.pipelineBuffer(pending.map((s) => ["cluster", "getkeysinslot", s.slot, ctx.options.pipeline]));
    const withKeys: { s: MigrateStep; keys: Buffer[] }[] = [];
    found.forEach(([err, keys], k) => {
      const s = pending[k]!;
      if (err) throw new StepFailedError(s.id, s.kind, `GETKEYSINSLOT ${s.slot} on ${first.from.addr} failed: ${err.message}`);
      if ((keys as Buffer[]).length > 0) withKeys.push({ s, keys: keys as Buffer[] });
    });
    if (withKeys.length === 0) return;
    const moved = await src.pipelineBuffer(withKeys.map(({ keys }) => ["migrate", host, port, "", 0, ctx.options.migrateTimeoutMs, ...auth, "keys", ...keys]));
    const retry: MigrateStep[] = [];
    moved.forEach(([err], k) => {
      const { s, keys } = withKeys[k]!;
      if (err) retry.push(s);
      else ctx.emit({ type: "keys-moved", slot: s.slot, keys: keys.length });
    });
    for (const s of retry) await moveKeys(s, ctx);
    pending = withKeys.map((w) => w.s);
  }
}
