/**
 * migrate-slot, the protocol redis-cli uses, made resumable:
 *   1. SETSLOT IMPORTING on the target, then SETSLOT MIGRATING on the source;
 *   2. GETKEYSINSLOT + MIGRATE ... KEYS in a loop until the slot is empty on the source
 *      (one pass is not enough: keys written during the move are caught by the next pass);
 *   3. SETSLOT NODE <target> on the target, then the source, then every other master.
 * It first looks at both nodes, so a slot found half-moved is continued where it stands.
 */
import { ClusterStateError, StepFailedError } from "../../errors.js";
import { parseNodeAddr } from "../../redis/node-key.js";
import type { NodeEntry } from "../../redis/cluster-nodes.js";
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";
import type { NodeClient } from "../../redis/connect.js";

type MigrateStep = Extract<Step, { kind: "migrate-slot" }>;

export const owns = (e: NodeEntry, slot: number): boolean => e.slots.some(([a, b]) => slot >= a && slot <= b);
/** MIGRATE's timeout grows for big keys up to this; it stays below the connection's 60 s command timeout. */
const MAX_MIGRATE_TIMEOUT_MS = 50_000;

export async function migrateSlot(s: MigrateStep, ctx: ExecCtx): Promise<boolean> {
  const { slot } = s;
  const src = await ctx.conn(s.from.addr);
  const dst = await ctx.conn(s.to.addr);
  let [srcSelf, dstSelf] = await Promise.all([ctx.self(s.from.addr), ctx.self(s.to.addr)]);
  if (srcSelf.id !== s.from.id || dstSelf.id !== s.to.id) {
    throw new ClusterStateError(`slot ${slot}: ${s.from.addr} or ${s.to.addr} now answers with another node id; the cluster changed, plan again`);
  }
  const srcMigrating = () => srcSelf.migrating.some((m) => m.slot === slot);
  const dstImporting = () => dstSelf.importing.some((m) => m.slot === slot);

  const finished = owns(dstSelf, slot) && !dstImporting() && !owns(srcSelf, slot) && !srcMigrating();
  if (finished) {
    // Done on both ends; telling the other masters again is harmless and covers a crash in step 3.
    await setSlotNodeOnOthers(s, ctx);
    return true;
  }
  if (!owns(srcSelf, slot) && !owns(dstSelf, slot)) {
    throw new ClusterStateError(`slot ${slot} is owned by neither ${s.from.addr} nor ${s.to.addr}: the cluster changed since the plan was made; plan again`);
  }

  if (!owns(dstSelf, slot)) {
    if (!dstImporting()) await dst.call("cluster", "setslot", slot, "importing", s.from.id);
    if (!srcMigrating()) await src.call("cluster", "setslot", slot, "migrating", s.to.id);
    await moveKeys(s, ctx);
    ctx.emit({ type: "setslot-node", slot, phase: "target" });
    await dst.call("cluster", "setslot", slot, "node", s.to.id);
  }
  // The target owns the slot. The source may still claim it (crash before its SETSLOT NODE).
  [srcSelf, dstSelf] = await Promise.all([ctx.self(s.from.addr), ctx.self(s.to.addr)]);
  if (owns(srcSelf, slot) || srcMigrating()) {
    if (Number(await src.call("cluster", "countkeysinslot", slot)) > 0) {
      // Keys left on the source after a crash: finish moving them first (MIGRATE needs MIGRATING).
      if (!srcMigrating()) await src.call("cluster", "setslot", slot, "migrating", s.to.id);
      await moveKeys(s, ctx);
    }
    ctx.emit({ type: "setslot-node", slot, phase: "source" });
    await setSlotNodeUnlessReplica(src, slot, s.to.id);
  }
  await setSlotNodeOnOthers(s, ctx);
  return false;
}

/** The AUTH part of a MIGRATE command: the source logs in to the target with the same credentials. */
export function migrateAuth(ctx: ExecCtx): string[] {
  const { user, password } = ctx.credentials;
  if (!password) return [];
  return user ? ["auth2", user, password] : ["auth", password];
}

/** Moves every key of the slot from source to target, batch by batch, until none is left. */
export async function moveKeys(s: MigrateStep, ctx: ExecCtx): Promise<void> {
  const src = await ctx.conn(s.from.addr);
  const { host, port } = parseNodeAddr(s.to.addr);
  const auth = migrateAuth(ctx);
  let timeout = ctx.options.migrateTimeoutMs;
  let batch = ctx.options.pipeline;
  // Keys whose copy on the target was found identical after a BUSYKEY: moved with REPLACE.
  const replaceable = new Set<string>();
  for (;;) {
    ctx.checkStop();
    const keys = (await src.callBuffer("cluster", "getkeysinslot", s.slot, batch)) as Buffer[];
    if (keys.length === 0) return;
    const replace = keys.every((k) => replaceable.has(k.toString("hex"))) ? ["replace"] : [];
    try {
      await src.callBuffer("migrate", host, port, "", 0, timeout, ...replace, ...auth, "keys", ...keys);
      ctx.emit({ type: "keys-moved", slot: s.slot, keys: keys.length });
      batch = ctx.options.pipeline;
    } catch (err) {
      const msg = (err as Error).message;
      if (/BUSYKEY/.test(msg)) {
        for (const k of await replaceableKeys(s, ctx, keys)) replaceable.add(k.toString("hex"));
        continue;
      }
      if (keys.length > 1) {
        batch = 1; // one key at a time, to find the key that fails
        continue;
      }
      const key = keys[0]!;
      const timedOut = /IOERR|timeout/i.test(msg);
      if (timedOut && timeout < MAX_MIGRATE_TIMEOUT_MS) {
        timeout = Math.min(timeout * 4, MAX_MIGRATE_TIMEOUT_MS);
        ctx.emit({ type: "note", message: `slot ${s.slot}: MIGRATE of key "${key.toString()}" timed out; retrying with a ${timeout / 1000} s timeout` });
        continue;
      }
      const size = await src.callBuffer("memory", "usage", key).catch(() => "unknown");
      throw new StepFailedError(
        s.id,
        s.kind,
        `key "${key.toString()}" (${String(size)} bytes) of slot ${s.slot} did not move from ${s.from.addr} to ${s.to.addr}` +
          (timedOut ? ` within ${timeout / 1000} s` : "") +
          `: ${msg}. It is still on ${s.from.addr}. ` +
          (timedOut ? "Check the network and the target's load" : "Fix the cause on the target (e.g. its maxmemory)") +
          `, then run apply again to continue this slot.`,
      );
    }
  }
}

/**
 * BUSYKEY: a key already exists on the target, e.g. copied there by a MIGRATE that timed out or a
 * run that crashed. Returns the keys whose target copy is the same as the source's (or absent), so
 * that replacing it loses nothing; a copy that differs stops apply, naming the key.
 */
async function replaceableKeys(s: MigrateStep, ctx: ExecCtx, keys: Buffer[]): Promise<Buffer[]> {
  const src = await ctx.conn(s.from.addr);
  const dst = await ctx.conn(s.to.addr);
  const same: Buffer[] = [];
  for (const key of keys) {
    // The MIGRATE that answered BUSYKEY moved the other keys of its batch: the source answers ASK for those.
    const here = (await src.callBuffer("dump", key).catch((err: Error) => {
      if (/^ASK /.test(err.message)) return null;
      throw err;
    })) as Buffer | null;
    if (here === null) continue; // gone from the source: nothing to move
    const there = await dst.askingDump(key);
    if (there !== null && Buffer.compare(here, there) !== 0) {
      throw new StepFailedError(
        s.id,
        s.kind,
        `key "${key.toString()}" of slot ${s.slot} exists on both ${s.from.addr} and ${s.to.addr} with different values. ` +
          `shardform will not overwrite either. Decide which value is right, delete the other copy by hand, then run apply again.`,
      );
    }
    same.push(key);
  }
  return same;
}

/** Every live master but the source and the target of a move: they learn the new owner last. */
export async function otherMasters(s: MigrateStep, ctx: ExecCtx): Promise<NodeEntry[]> {
  const members = await ctx.members(s.to.addr);
  return members.filter((m) => m.role === "master" && m.id !== s.from.id && m.id !== s.to.id && !m.flags.includes("fail"));
}

/** SETSLOT NODE on every master other than source and target, in parallel. */
async function setSlotNodeOnOthers(s: MigrateStep, ctx: ExecCtx): Promise<void> {
  ctx.emit({ type: "setslot-node", slot: s.slot, phase: "others" });
  const others = await otherMasters(s, ctx);
  await Promise.all(
    others.map(async (m) => {
      await setSlotNodeUnlessReplica(await ctx.conn(m.addr), s.slot, s.to.id);
    }),
  );
}

/**
 * A master that lost its last slot turns itself into a replica of the new owner (Redis's replica
 * migration); it owns nothing, so SETSLOT NODE on it has nothing left to do.
 */
export const NOW_REPLICA = /Please use SETSLOT only with masters/;

/** SETSLOT NODE, except on a master that became a replica on losing its last slot. */
async function setSlotNodeUnlessReplica(c: NodeClient, slot: number, targetId: string): Promise<void> {
  try {
    await c.call("cluster", "setslot", slot, "node", targetId);
  } catch (err) {
    if (!NOW_REPLICA.test((err as Error).message)) throw err;
  }
}
