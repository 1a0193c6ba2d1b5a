/** Rules 5 and 7: slots nobody owns are added to their masters; the rest move the fewest slots that reach the targets. */
import { SLOT_COUNT, countSlots, toRanges } from "../../slots.js";
import type { PlanContext } from "../context.js";
import { distribute } from "../distribute.js";

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
  const dist = distribute(
    ctx.b.model.owner,
    ctx.shards.map((s) => ({ masterId: s.masterId, weight: s.weight, ...(s.pinned ? { pinned: s.pinned } : {}) })),
    ctx.spec.threshold,
  );
  if (!dist.rebalanced && ctx.shards.some((s) => !s.pinned)) {
    ctx.notes.push(`slots are balanced within ${ctx.spec.threshold}% (worst deviation ${dist.imbalance.toFixed(1)}%): no slot moves for balance`);
  }
  return dist.owner;
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
  for (const k of pairs) {
    const [from, to] = k.split(" ") as [string, string];
    const drained = ctx.want.get(from)?.role !== "master";
    for (const slot of moves.get(k)!) {
      ctx.b.push({
        kind: "migrate-slot",
        slot,
        from: ctx.b.ref(from),
        to: ctx.b.ref(to),
        estKeys: estimateKeys(ctx, from),
        ...(drained ? { reason: "drain a master the spec removes or demotes" } : {}),
      });
    }
  }
}
