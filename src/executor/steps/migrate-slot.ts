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
const MAX_MIGRATE_TIMEOUT_MS = 10 * 60_000;

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
  for (;;) {
    ctx.checkStop();
    const keys = (await src.callBuffer("cluster", "getkeysinslot", s.slot, batch)) as Buffer[];
    if (keys.length === 0) return;
    try {
      await src.callBuffer("migrate", host, port, "", 0, timeout, ...auth, "keys", ...keys);
      ctx.emit({ type: "keys-moved", slot: s.slot, keys: keys.length });
      batch = ctx.options.pipeline;
    } catch (err) {
      const msg = (err as Error).message;
      if (/BUSYKEY/.test(msg)) {
        await resolveBusyKeys(s, ctx, keys, auth, timeout);
      } else if (/IOERR|timeout/i.test(msg)) {
        if (keys.length > 1) {
          batch = 1; // find the key that does not fit in the timeout
        } else if (timeout < MAX_MIGRATE_TIMEOUT_MS) {
          timeout = Math.min(timeout * 4, MAX_MIGRATE_TIMEOUT_MS);
          ctx.emit({ type: "note", message: `slot ${s.slot}: MIGRATE timed out; retrying with a ${timeout / 1000} s timeout` });
        } else {
          const size = await src.call("memory", "usage", keys[0]!.toString("latin1")).catch(() => "unknown");
          throw new StepFailedError(
            s.id,
            s.kind,
            `key "${keys[0]!.toString()}" (${String(size)} bytes) did not move within ${MAX_MIGRATE_TIMEOUT_MS / 1000} s: ${msg}. ` +
              `Check the network and the target's memory, then run apply again to continue this slot.`,
          );
        }
      } else {
        throw new StepFailedError(s.id, s.kind, `MIGRATE of slot ${s.slot} from ${s.from.addr} to ${s.to.addr} failed: ${msg}`);
      }
    }
  }
}

/**
 * BUSYKEY: a key already exists on the target, e.g. copied there before a crash. If its value is the
 * same as the source's, replacing it loses nothing; if it differs, stop and say so.
 */
async function resolveBusyKeys(s: MigrateStep, ctx: ExecCtx, keys: Buffer[], auth: (string | Buffer)[], timeout: number): Promise<void> {
  const src = await ctx.conn(s.from.addr);
  const dst = await ctx.conn(s.to.addr);
  const { host, port } = parseNodeAddr(s.to.addr);
  for (const key of keys) {
    const here = (await src.callBuffer("dump", key)) as Buffer | null;
    if (here === null) continue; // gone from the source meanwhile: nothing to move
    const there = await dst.askingDump(key);
    if (there === null) continue; // not on the target: the next pass moves it
    if (Buffer.compare(here, there) === 0) {
      await src.callBuffer("migrate", host, port, "", 0, timeout, "replace", ...auth, "keys", key);
    } else {
      throw new StepFailedError(
        s.id,
        s.kind,
        `key "${key.toString()}" of slot ${s.slot} exists on both ${s.from.addr} and ${s.to.addr} with different values. ` +
          `shardform will not overwrite either. Decide which value is right, delete the other copy by hand, then run apply again.`,
      );
    }
  }
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
