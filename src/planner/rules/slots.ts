/** Rules 5 and 7: slots nobody owns are added to their masters; the rest move the fewest slots that reach the targets. */
import { SLOT_COUNT, countSlots, toRanges } from "../../slots.js";
import type { PlanContext } from "../context.js";
import { distribute, type ShardTarget } from "../distribute.js";
import { balanceByLoad } from "../balance.js";
import { formatBytes } from "../../util/bytes.js";
import { slotAmounts, type LoadMeasurement } from "../../observe/load.js";
import type { BalanceReport, MasterLoad } from "../../plan/types.js";

/** Keys a slot of `from` holds, estimated from its key count; rounded cumulatively so that totals stay right. */
export function estimateKeys(ctx: PlanContext, from: string): number {
  const n = ctx.members.get(from);
  const slots = n && n.role === "master" ? countSlots(n.slots) : 0;
  const rate = slots > 0 ? (n!.keys ?? 0) / slots : 0;
  const k = ctx.slotsEstimated.get(from) ?? 0;
  ctx.slotsEstimated.set(from, k + 1);
  return Math.round((k + 1) * rate) - Math.round(k * rate);
}

/** Which master each slot should end with (pure, from the model as the earlier rules leave it). */
export function targetOwners(ctx: PlanContext): (string | null)[] {
  const targets = ctx.shards.map((s) => ({ masterId: s.masterId, weight: s.weight, ...(s.pinned ? { pinned: s.pinned } : {}) }));
  if (ctx.spec.balanceBy) return targetsByLoad(ctx, ctx.spec.balanceBy, targets);
  const dist = distribute(ctx.b.model.owner, targets, ctx.spec.threshold);
  if (!dist.rebalanced && ctx.shards.some((s) => !s.pinned)) {
    ctx.notes.push(`slots are balanced within ${ctx.spec.threshold}% (worst deviation ${dist.imbalance.toFixed(1)}%): no slot moves for balance`);
  }
  return dist.owner;
}


/** Balance by keys or memory (src/planner/balance.ts), with the report the plan carries. */
function targetsByLoad(ctx: PlanContext, by: "keys" | "memory" | "cpu", targets: ShardTarget[]): (string | null)[] {
  const load = ctx.observed.load;
  if (!load || load.by !== by) {
    ctx.problems.push(
      `the spec balances by ${by}, but the topology has no ${by} measurement${load ? ` (it was measured by ${load.by})` : ""}: plan against the live cluster, or take the snapshot with \`shardform snapshot --spec SPEC\` (it measures what the spec balances by)`,
    );
    return ctx.b.model.owner;
  }
  const amounts = slotAmounts(load);
  const start = [...ctx.b.model.owner];
  const b = balanceByLoad(start, targets, ctx.spec.threshold, amounts);
  const keys = new Float64Array(SLOT_COUNT);
  const bytes = new Float64Array(SLOT_COUNT);
  const cpu = new Float64Array(SLOT_COUNT);
  for (const [s, k, y, c] of load.slots) [keys[s], bytes[s], cpu[s]] = [k, y, c ?? 0];
  const sum = (owner: readonly (string | null)[], id: string): MasterLoad => {
    const out: MasterLoad = { slots: 0, keys: 0, bytes: 0, ...(by === "cpu" ? { cpu: 0 } : {}) };
    owner.forEach((o, s) => {
      if (o !== id) return;
      out.slots++;
      out.keys += keys[s]!;
      out.bytes += bytes[s]!;
      if (out.cpu !== undefined) out.cpu += cpu[s]!;
    });
    return out;
  };
  const ids = [...new Set([...start, ...b.owner].filter((x): x is string => x !== null))].sort((x, y) => ctx.b.ref(x).addr.localeCompare(ctx.b.ref(y).addr));
  const moved: BalanceReport["moved"] = { keys: 0, bytes: 0, ...(by === "cpu" ? { cpu: 0 } : {}) };
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (start[s] === null || b.owner[s] === start[s]) continue;
    moved.keys += keys[s]!;
    moved.bytes += bytes[s]!;
    if (moved.cpu !== undefined) moved.cpu += cpu[s]!;
  }
  const unit = (n: number): string => (by === "memory" ? formatBytes(n) : by === "cpu" ? `${(n / 1000).toFixed(1)} ms of CPU` : `${Math.round(n)} keys`);
  const report: BalanceReport = {
    by,
    threshold: ctx.spec.threshold,
    measuredAt: load.measuredAt,
    method: load.method,
    masters: ids.map((id) => ({ id, addr: ctx.b.ref(id).addr, share: b.share.has(id) ? Math.round(b.share.get(id)!) : null, before: sum(start, id), after: sum(b.owner, id) })),
    before: round1(b.before),
    after: round1(b.after),
    moved,
    lowerBound: Math.round(b.lowerBound),
  };
  if (b.unreachable) {
    const u = b.unreachable;
    const heavy = u.heavySlots.map((h) => `slot ${h.slot} (${unit(h.amount)}${tagOf(load, h.slot)})`).join(", ");
    const options = [`a wider threshold (balance.threshold: ${Math.ceil(b.after)})`, "weights"];
    if (heavy) options.push("a shard of its own for the heavy slot (pin it)", "splitting the hash tag in the application");
    if (by === "memory") options.push("more memory");
    report.unreachable =
      `${ctx.b.ref(u.master).addr} cannot be brought within ${ctx.spec.threshold}% of its share (a band up to ${unit(u.bandTop)})` +
      (heavy
        ? `: ${heavy} ${u.heavySlots.length === 1 ? "weighs" : "weigh"} too much for one master's share. The best reachable deviation is ${round1(b.after)}%, and this plan goes there, leaving the heavy slot's master little else. `
        : `: every slot that could move weighs more than the band leaves room for. The best reachable deviation is ${round1(b.after)}%, and this plan goes there. `) +
      `Options: ${options.join(", ")}.`;
    ctx.warnings.push(report.unreachable);
  }
  capacityProblems(ctx, report, load, bytes, start, b.owner);
  if (!b.rebalanced) ctx.notes.push(`masters are balanced by ${by} within ${ctx.spec.threshold}% (worst deviation ${b.before.toFixed(1)}%): no slot moves for balance`);

  ctx.balance = report;
  return b.owner;
}

const round1 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 10) / 10 : 999999);

/** ", hash tag {x}" when the measurement's largest keys say what fills a slot. */
function tagOf(load: LoadMeasurement, slot: number): string {
  const keys = (load.bigKeys ?? []).filter((k) => k.slot === slot);
  if (keys.length === 0) return "";
  const tag = /\{([^}]+)\}/.exec(keys[0]!.key)?.[1];
  return tag !== undefined && keys.every((k) => k.key.includes(`{${tag}}`)) ? `, hash tag {${tag}}, largest key ${keys[0]!.key}` : `, largest key ${keys[0]!.key} (${formatBytes(keys[0]!.bytes)})`;
}

/** Fill of a master's maxmemory the end state may not pass. */
export const MAX_FILL = 0.9;

/**
 * Capacity is a hard limit: no master may end above MAX_FILL of its maxmemory (used_memory grows by
 * what moves in), nor pass it on the way. A master that both gives and takes (a pinned shard giving
 * its other slots away) could pass it if its slots came in before its own went out: such masters go
 * into ctx.capacity, for moveSlots to order the moves so that each fits when it comes.
 */
function capacityProblems(ctx: PlanContext, report: BalanceReport, load: LoadMeasurement, bytes: Float64Array, start: readonly (string | null)[], end: readonly (string | null)[]): void {
  if (report.by !== "memory") return;
  const incoming = new Map<string, number>();
  const gives = new Set<string>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (start[s] === null || start[s] === end[s]) continue;
    gives.add(start[s]!);
    if (end[s] !== null) incoming.set(end[s]!, (incoming.get(end[s]!) ?? 0) + bytes[s]!);
  }
  for (const m of report.masters) {
    const measured = load.shards[m.id];
    if (!measured || measured.maxmemory <= 0) continue;
    const after = measured.usedMemory + (m.after.bytes - m.before.bytes);
    const limit = measured.maxmemory * MAX_FILL;
    if (after <= limit && gives.has(m.id) && measured.usedMemory + (incoming.get(m.id) ?? 0) > limit) {
      ctx.capacity ??= { bytes, masters: new Map() };
      ctx.capacity.masters.set(m.id, { used: measured.usedMemory, limit });
    }
    if (m.after.bytes > m.before.bytes && after > limit) {
      ctx.problems.push(
        `${m.addr} would hold about ${formatBytes(after)} after this plan (${formatBytes(measured.usedMemory)} now, plus ${formatBytes(m.after.bytes - m.before.bytes)} moved in), ` +
          `more than ${MAX_FILL * 100}% of its maxmemory ${formatBytes(measured.maxmemory)}: it needs ${formatBytes(after - limit)} more room. Raise its maxmemory, add a shard, or give it a smaller weight`,
      );
    }
  }
}

export function addUnownedSlots(ctx: PlanContext, target: (string | null)[]): void {
  const unowned = new Map<string, number[]>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (ctx.b.model.owner[s] !== null) continue;
    const to = target[s]!;
    const list = unowned.get(to);
    if (list) list.push(s);
    else unowned.set(to, [s]);
  }
  for (const sh of ctx.shards) {
    const slots = unowned.get(sh.masterId);
    if (slots) ctx.b.push({ kind: "add-slots", node: ctx.b.ref(sh.masterId), ranges: toRanges(slots), reason: "slots no node owns" });
  }
}

export function moveSlots(ctx: PlanContext, target: (string | null)[]): void {
  const moves = new Map<string, number[]>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    const from = ctx.b.model.owner[s];
    const to = target[s];
    if (!from || !to || from === to) continue;
    const list = moves.get(`${from} ${to}`);
    if (list) list.push(s);
    else moves.set(`${from} ${to}`, [s]);
  }
  const addr = (id: string) => ctx.b.ref(id).addr;
  const pairs = [...moves.keys()].sort((a, b) => {
    const [fa, ta] = a.split(" ") as [string, string];
    const [fb, tb] = b.split(" ") as [string, string];
    return addr(fa).localeCompare(addr(fb)) || addr(ta).localeCompare(addr(tb));
  });
  let order = pairs.flatMap((k) => {
    const [from, to] = k.split(" ") as [string, string];
    return moves.get(k)!.map((slot) => ({ slot, from, to }));
  });
  // Capacity (balance by memory): a master that gives and takes, with too little room to take first,
  // takes each slot only once enough of what it gives has gone.
  const tight = ctx.capacity?.masters;
  const outs = new Map<string, string[]>();
  if (ctx.capacity && tight) {
    const seq = capacityOrder(order, ctx.capacity);
    if (!seq) {
      ctx.problems.push(
        `no order of the slot moves keeps every master within ${MAX_FILL * 100}% of its maxmemory on the way (${[...tight.keys()].map(addr).join(", ")} give and take with too little room): ` +
          `raise their maxmemory, or reach the balance in two plans (pin fewer slots at once)`,
      );
      return;
    }
    order = seq;
  }
  for (const m of order) {
    const drained = ctx.want.get(m.from)?.role !== "master";
    const step = ctx.b.push({
      kind: "migrate-slot",
      slot: m.slot,
      from: ctx.b.ref(m.from),
      to: ctx.b.ref(m.to),
      estKeys: estimateKeys(ctx, m.from),
      ...(drained ? { reason: "drain a master the spec removes or demotes" } : {}),
    });
    if (tight?.has(m.from)) {
      const list = outs.get(m.from);
      if (list) list.push(step.id);
      else outs.set(m.from, [step.id]);
    }
    // Everything it gave before this slot, in the order that fits, must be gone before this slot comes in.
    if (tight?.has(m.to) && outs.has(m.to)) step.needs = [...new Set([...step.needs, ...outs.get(m.to)!])].sort((x, y) => Number.parseInt(x, 10) - Number.parseInt(y, 10));
  }
}

/**
 * The moves in an order that keeps each tight master (bytes now, limit) within its limit after every
 * move: moves into a master wait until moves out of it make room. Null when some can never fit.
 */
function capacityOrder(order: { slot: number; from: string; to: string }[], capacity: NonNullable<PlanContext["capacity"]>): { slot: number; from: string; to: string }[] | null {
  const tight = capacity.masters;
  const mem = new Map([...tight].map(([id, t]) => [id, t.used]));
  const bytesOf = (slot: number): number => capacity.bytes[slot]!;
  const waiting = new Map<string, { slot: number; from: string; to: string }[]>();
  const out: { slot: number; from: string; to: string }[] = [];
  const fits = (m: { slot: number; to: string }): boolean => !tight.has(m.to) || mem.get(m.to)! + bytesOf(m.slot) <= tight.get(m.to)!.limit;
  const take = (m: { slot: number; from: string; to: string }): void => {
    out.push(m);
    if (tight.has(m.to)) mem.set(m.to, mem.get(m.to)! + bytesOf(m.slot));
    if (tight.has(m.from)) {
      mem.set(m.from, mem.get(m.from)! - bytesOf(m.slot));
      // Room was made: what waited for it may come in now (and may make room elsewhere in turn).
      const queue = waiting.get(m.from) ?? [];
      waiting.set(m.from, []);
      for (const w of queue) {
        if (fits(w)) take(w);
        else waiting.get(m.from)!.push(w);
      }
    }
  };
  for (const m of order) {
    if (fits(m)) take(m);
    else {
      const list = waiting.get(m.to);
      if (list) list.push(m);
      else waiting.set(m.to, [m]);
    }
  }
  return [...waiting.values()].some((w) => w.length > 0) ? null : out;
}
