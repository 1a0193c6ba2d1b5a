/**
 * add-slots: ADDSLOTSRANGE for slots nobody owns (ADDSLOTS on servers without it, e.g. Redis 6.2), a
 * fresh config epoch, then one shared wait until every member sees every node of the batch owning them
 * (members that lag are nudged: ExecCtx.nudge).
 */
import { ClusterChangedError } from "../../errors.js";
import { expandRanges, toRanges, type SlotRange } from "../../slots.js";
import type { StepOf } from "../../plan/types.js";
import type { NodeClient } from "../../redis/connect.js";
import type { NodeEntry } from "../../redis/cluster-nodes.js";
import { mapLimit } from "../../util/limit.js";
import type { ExecCtx } from "../context.js";

type AddSlotsStep = StepOf<"add-slots">;

/** ADDSLOTSRANGE, or ADDSLOTS when the server does not know it (decided by its answer, not its version). */
export async function addSlotRanges(c: NodeClient, ranges: SlotRange[]): Promise<void> {
  try {
    await c.call("cluster", "addslotsrange", ...ranges.flat());
  } catch (err) {
    if (!/unknown subcommand|unknown command/i.test((err as Error).message)) throw err;
    await c.call("cluster", "addslots", ...expandRanges(ranges));
  }
}

export async function addSlots(steps: AddSlotsStep[], ctx: ExecCtx): Promise<void> {
  await Promise.all(
    steps.map(async (s) => {
      const me = await ctx.selfOf(s.node);
      if (me.role !== "master") throw new ClusterChangedError(`${s.node.addr} should be a master to take slots, but is a replica: the cluster changed; plan again`);
      const owned = new Set(expandRanges(me.slots));
      const missing = toRanges(expandRanges(s.ranges).filter((x) => !owned.has(x)));
      if (missing.length === 0) return;
      const c = await ctx.conn(s.node.addr);
      await addSlotRanges(c, missing);
      // A unique config epoch lets this claim win over stale ones; collisions are resolved by Redis.
      await c.call("cluster", "bumpepoch");
    }),
  );
  ctx.emit({ type: "wait", what: `every member to see the new slot owners` });
  await ctx.waitUntil(`every member sees ${steps.map((s) => s.node.addr).join(", ")} owning their new slots`, async () => {
    const r = await ctx.readCluster();
    const lags: { s: AddSlotsStep; viewer: NodeEntry; gap: number }[] = [];
    const members = new Map(r.members.map((m) => [m.id, m]));
    for (const s of steps) {
      const want = expandRanges(s.ranges);
      for (const [id, v] of r.views) {
        const has = new Set(expandRanges(v.find((e) => e.id === s.node.id)?.slots ?? []));
        const gap = want.find((x) => !has.has(x));
        const viewer = members.get(id);
        if (gap !== undefined && viewer) lags.push({ s, viewer, gap });
      }
    }
    await mapLimit(lags, 32, (l) => ctx.nudge(l.s.node, l.viewer));
    const l = lags[0];
    return l ? `${l.viewer.addr} does not see slot ${l.gap} on ${l.s.node.addr} yet` : null;
  });
}
