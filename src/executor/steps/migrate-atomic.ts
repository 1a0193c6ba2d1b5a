/**
 * migrate-slot by the server's own slot migration (safety rule 10), for a window whose source and target
 * both have it (Valkey 9+): the source is sent one CLUSTER MIGRATESLOTS SLOTSRANGE ... NODE <target>
 * for the window's slots it still owns, and apply follows it with CLUSTER GETSLOTMIGRATIONS until the
 * server says it succeeded (it then owns nothing of them any more: the target does, with a new config
 * epoch) or failed (the server rolled it back: the keys are still on the source; the window runs again).
 *  - Shard to shard (rule 3): the ends are resolved as for key-by-key moves, so a window whose source or
 *    target the cluster failed over goes on with that shard's new master.
 *  - Never two migrations of the same slots: before starting one, an export of any of the window's slots
 *    that the source still runs (apply stopped while it ran) is waited for instead.
 *  - A slot the source no longer owns was moved already: the target must own it.
 */
import { FailoverPendingError, StepFailedError } from "../../errors.js";
import { describe, type NodeClient } from "../../redis/connect.js";
import type { NodeRef, StepOf } from "../../plan/types.js";
import { ownsSlot as owns } from "../../safety/rules.js";
import { formatRanges, toRanges } from "../../slots.js";
import type { ExecCtx } from "../context.js";
import { failpoint } from "../failpoints.js";
import type { Ends } from "./migrate-slots.js";

type MigrateStep = StepOf<"migrate-slot">;

/** One entry of CLUSTER GETSLOTMIGRATIONS. */
export interface SlotMigration {
  name: string;
  operation: string;
  ranges: [number, number][];
  target: string;
  source: string;
  state: string;
  message: string;
  updated: number;
}

const DONE = new Set(["success"]);
const FAILED = new Set(["failed", "cancelled", "canceled"]);

/** Parses CLUSTER GETSLOTMIGRATIONS (a list of field/value lists). Pure. */
export function parseSlotMigrations(reply: unknown): SlotMigration[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry) => {
    const f = new Map<string, string>();
    const list = Array.isArray(entry) ? (entry as unknown[]) : [];
    for (let i = 0; i + 1 < list.length; i += 2) f.set(String(list[i]), String(list[i + 1]));
    const ranges = (f.get("slot_ranges") ?? "")
      .split(/[ ,]+/)
      .filter(Boolean)
      .map((r) => {
        const [a, b] = r.split("-").map(Number) as [number, number | undefined];
        return [a, b ?? a] as [number, number];
      });
    return {
      name: f.get("name") ?? "",
      operation: (f.get("operation") ?? "").toUpperCase(),
      ranges,
      target: f.get("target_node") ?? "",
      source: f.get("source_node") ?? "",
      state: (f.get("state") ?? "").toLowerCase(),
      message: f.get("message") ?? "",
      updated: Number(f.get("last_update_time") ?? 0),
    };
  });
}

const covers = (m: SlotMigration, slot: number): boolean => m.ranges.some(([a, b]) => slot >= a && slot <= b);

async function migrations(c: NodeClient): Promise<SlotMigration[]> {
  return parseSlotMigrations(await c.call("cluster", "getslotmigrations"));
}

/** `ends`: who serves the window's source and target shards now (resolveEnds). */
export async function migrateSlotsAtomic(steps: MigrateStep[], { src, s, dst }: Ends, ctx: ExecCtx): Promise<void> {
  const first = steps[0]!;
  const mine = src && s ? steps.filter((st) => owns(s, st.slot)) : [];
  if (src && mine.length > 0) {
    const c = await ctx.conn(src.addr);
    const slots = mine.map((st) => st.slot);
    // An export of these slots still running (apply stopped while it ran; the checkpoint names the ones
    // this plan started): follow it, never start a second.
    const listed = await migrations(c);
    const running = listed.filter((m) => m.operation === "EXPORT" && !DONE.has(m.state) && !FAILED.has(m.state) && slots.some((x) => covers(m, x)));
    let name = (running.find((m) => ctx.migrations[m.name] !== undefined) ?? running[0])?.name;
    if (name) {
      const ours = ctx.migrations[name] !== undefined ? `migration ${name.slice(0, 8)}, which this plan started before apply stopped` : "a migration started outside this apply";
      ctx.emit({ type: "note", message: `${src.addr} is still migrating slot(s) of this window to ${dst.addr} (${ours}): waiting for it` });
    }
    else {
      const before = new Set(listed.map((m) => m.name));
      const ranges = toRanges(slots);
      try {
        await c.call("cluster", "migrateslots", "slotsrange", ...ranges.flat(), "node", dst.id);
      } catch (err) {
        // The source was demoted after the ends were read (a failover): the window runs again from its shard's new master.
        if (/primary|master/i.test(describe(err))) throw new FailoverPendingError(`${src.addr} is no longer a master (${describe(err)}): the window runs again from its shard's new master`);
        throw err;
      }
      name = (await migrations(c)).find((m) => m.operation === "EXPORT" && !before.has(m.name) && slots.some((x) => covers(m, x)))?.name;
      if (!name) throw new StepFailedError(first.id, first.kind, `${src.addr} accepted CLUSTER MIGRATESLOTS for slot(s) ${slots.join(", ")} but lists no such migration`);
      ctx.onMigration?.(name, `${src.id}>${dst.id} ${formatRanges(ranges)}`);
    }
    await failpoint(ctx, "atomic:started");
    await follow(c, name, src, dst, slots, ctx, first);
  }
  // Every slot of the window must be the target's now (moved by this migration or an earlier one).
  await ctx.waits.waitUntil(`${dst.addr} to own the slots the server migrated to it`, async () => {
    const d = await ctx.reads.selfOf(dst);
    const missing = steps.filter((st) => !owns(d, st.slot));
    return missing.length === 0 ? null : `${dst.addr} does not own slot(s) ${missing.map((m) => m.slot).join(", ")} yet`;
  });
  ctx.emit({ type: "keys-moved", slot: first.slot, keys: steps.reduce((n, st) => n + st.estKeys, 0) });
}

/** Polls the source until the migration `name` succeeded; a failed one (rolled back by the server) runs the window again. */
async function follow(c: NodeClient, name: string, src: NodeRef, dst: NodeRef, slots: number[], ctx: ExecCtx, first: MigrateStep): Promise<void> {
  let last = "";
  let lastChange = Date.now();
  for (let delay = 5; ; delay = Math.min(delay * 2, 50)) {
    if (ctx.stop === "hard") return;
    let m: SlotMigration | undefined;
    try {
      m = (await migrations(c)).find((x) => x.name === name);
    } catch (err) {
      throw new FailoverPendingError(`${src.addr} did not answer about its slot migration to ${dst.addr} (${describe(err)})`);
    }
    if (!m) throw new FailoverPendingError(`${src.addr} no longer lists its slot migration ${name.slice(0, 8)} to ${dst.addr} (restarted or failed over?): the window runs again`);
    if (DONE.has(m.state)) return;
    if (FAILED.has(m.state)) {
      throw new FailoverPendingError(`the server's migration of slot(s) ${slots.join(", ")} from ${src.addr} to ${dst.addr} ${m.state}${m.message ? `: ${m.message}` : ""}; the server rolled it back (the keys are still on ${src.addr}); running the window again`);
    }
    const progress = `${m.state} ${m.updated}`;
    if (progress !== last) [last, lastChange] = [progress, Date.now()];
    else if (Date.now() - lastChange > ctx.options.waitTimeoutMs) {
      throw new StepFailedError(first.id, first.kind, `the server's migration of slot(s) ${slots.join(", ")} from ${src.addr} to ${dst.addr} has not moved on for ${ctx.options.waitTimeoutMs / 1000} s (state ${m.state}); check it with CLUSTER GETSLOTMIGRATIONS on ${src.addr}, then run apply again`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
