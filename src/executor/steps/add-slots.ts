/** add-slots: ADDSLOTSRANGE for slots nobody owns, a fresh config epoch, and wait until every member agrees. */
import { expandRanges, toRanges } from "../../slots.js";
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type AddSlotsStep = Extract<Step, { kind: "add-slots" }>;

export async function addSlots(s: AddSlotsStep, ctx: ExecCtx): Promise<boolean> {
  const me = await ctx.self(s.node.addr);
  const owned = new Set(expandRanges(me.slots));
  const missing = toRanges(expandRanges(s.ranges).filter((x) => !owned.has(x)));
  const c = await ctx.conn(s.node.addr);
  if (missing.length > 0) {
    await c.call("cluster", "addslotsrange", ...missing.flat());
    // A unique config epoch lets this claim win over stale ones; collisions are resolved by Redis.
    await c.call("cluster", "bumpepoch");
  }
  const want = new Set(expandRanges(s.ranges));
  ctx.emit({ type: "wait", what: `every member to see ${s.node.addr} owning its slots` });
  await ctx.waitUntil(`every member sees ${s.node.addr} owning its new slots`, async () => {
    for (const m of await ctx.members(s.node.addr)) {
      const entry = (await ctx.view(m.addr)).find((e) => e.id === s.node.id);
      const has = new Set(expandRanges(entry?.slots ?? []));
      for (const x of want) if (!has.has(x)) return `${m.addr} does not see slot ${x} on ${s.node.addr} yet`;
    }
    return null;
  });
  return missing.length === 0;
}
