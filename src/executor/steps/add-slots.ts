/**
 * add-slots: ADDSLOTSRANGE for slots nobody owns (ADDSLOTS on servers without it, e.g. Redis 6.2), a
 * config epoch of its own for each master (one after the other: see uniqueEpochs), then one shared wait until every member sees every node of the batch owning them
 * (members that lag are nudged: ExecCtx.nudge).
 */
import { ClusterChangedError } from "../../errors.js";
import { expandRanges, toRanges, type SlotRange } from "../../slots.js";
import type { NodeRef, StepOf } from "../../plan/types.js";
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
  const claimed = await Promise.all(
    steps.map(async (s) => {
      const me = await ctx.reads.selfOf(s.node);
      if (me.role !== "master") throw new ClusterChangedError(`${s.node.addr} should be a master to take slots, but is a replica: the cluster changed; plan again`);
      const owned = new Set(expandRanges(me.slots));
      const missing = toRanges(expandRanges(s.ranges).filter((x) => !owned.has(x)));
      if (missing.length === 0) return null;
      await addSlotRanges(await ctx.conn(s.node.addr), missing);
      return s;
    }),
  );
  await uniqueEpochs(
    claimed.filter((s): s is AddSlotsStep => s !== null),
    ctx,
  );
  ctx.emit({ type: "wait", what: `every member to see the new slot owners` });
  await ctx.waits.waitUntil(`every member sees ${steps.map((s) => s.node.addr).join(", ")} owning their new slots`, async () => {
    const r = await ctx.reads.readCluster();
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
    await mapLimit(lags, 32, (l) => ctx.waits.nudge(l.s.node, l.viewer));
    const l = lags[0];
    return l ? `${l.viewer.addr} does not see slot ${l.gap} on ${l.s.node.addr} yet` : null;
  });
}

/**
 * Gives each master that just took slots and has no config epoch of its own yet (0, or one another
 * master shares; meet gives joining nodes theirs) one, one master after the other.
 * CLUSTER BUMPEPOCH takes the node's own current epoch plus one, so masters bumped at the same moment
 * all get the same epoch. Redis resolves such collisions by gossip, one pair at a time: with 100
 * masters that goes on for minutes, and meanwhile a master's epoch can jump above that of a node given
 * a slot later, whose slots (and, once it no longer imports them, their keys) it then takes back. So
 * each master first learns the highest epoch so far (the master bumped last greets it with CLUSTER MEET,
 * whose header carries it), and only then bumps.
 */
async function uniqueEpochs(steps: AddSlotsStep[], ctx: ExecCtx): Promise<void> {
  if (steps.length === 0) return;
  // Batches of add-slots run side by side: their bumps take turns.
  await ctx.oneAtATime("config epochs", async () => {
    // The highest epoch so far, and a node that knows it (its current epoch is at least its own epoch).
    const r = await ctx.reads.readCluster();
    let from: NodeRef | null = null;
    let top = 0;
    for (const me of r.selves.values()) {
      if (me.configEpoch > top) [top, from] = [me.configEpoch, { id: me.id, addr: me.addr }];
    }
    const masters = [...r.selves.values()].filter((e) => e.role === "master");
    for (const s of steps) {
      // A master that met the cluster with an epoch of its own (see meet) keeps it.
      const mine = r.selves.get(s.node.id)?.configEpoch ?? 0;
      if (mine > 0 && !masters.some((m) => m.id !== s.node.id && m.configEpoch === mine)) continue;
      const teacher = from;
      if (teacher && teacher.id !== s.node.id) {
        const learner = await ctx.reads.self(s.node.addr);
        await ctx.waits.waitUntil(`${s.node.addr} learns the current epoch ${top}`, async () => {
          const now = Number((await ctx.reads.clusterInfo(s.node.addr))["cluster_current_epoch"] ?? 0);
          if (now >= top) return null;
          await ctx.waits.greet(teacher, learner);
          return `its current epoch is ${now}`;
        });
      }
      await (await ctx.conn(s.node.addr)).call("cluster", "bumpepoch");
      top = Math.max(top, Number((await ctx.reads.clusterInfo(s.node.addr))["cluster_my_epoch"] ?? 0));
      from = s.node;
    }
  });
}
