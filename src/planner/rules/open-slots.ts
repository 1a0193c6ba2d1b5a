/** Rule 1: finish the slot moves an interrupted run left open, before anything else. */
import { openMoves } from "../../plan/open-slots.js";
import type { PlanContext } from "../context.js";
import { estimateKeys } from "./slots.js";

/** Returns the slots each node will receive from these moves, so that keys already there are expected. */
export function finishOpenSlots(ctx: PlanContext): Map<string, Set<number>> {
  const receiving = new Map<string, Set<number>>();
  for (const m of openMoves(ctx.observed)) {
    if (m.problem || !m.from || !m.to) {
      ctx.problems.push(m.problem!);
      continue;
    }
    ctx.b.push({
      kind: "migrate-slot",
      slot: m.slot,
      from: ctx.b.ref(m.from),
      to: ctx.b.ref(m.to),
      estKeys: estimateKeys(ctx, m.from),
      reason: `finish the interrupted move (${m.state})`,
    });
    const set = receiving.get(m.to) ?? new Set<number>();
    set.add(m.slot);
    receiving.set(m.to, set);
  }
  return receiving;
}
