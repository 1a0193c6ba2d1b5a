/** meet: CLUSTER MEET, then wait until every member knows every other (and, for a working cluster, reports ok). */
import { parseNodeAddr } from "../../redis/node-key.js";
import { SLOT_COUNT } from "../../slots.js";
import type { Step } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";

type MeetStep = Extract<Step, { kind: "meet" }>;

export async function meet(s: MeetStep, ctx: ExecCtx): Promise<boolean> {
  const known = (await ctx.members(s.via.addr)).some((m) => m.id === s.node.id);
  // A cluster that served every slot must do so again before the next step (else CLUSTERDOWN).
  const covered = Number((await ctx.clusterInfo(s.via.addr))["cluster_slots_assigned"] ?? 0) === SLOT_COUNT;
  if (!known) {
    const { host, port } = parseNodeAddr(s.via.addr);
    await (await ctx.conn(s.node.addr)).call("cluster", "meet", host, port);
  }
  ctx.emit({ type: "wait", what: `${s.node.addr} to be known by every member` });
  await ctx.waitConverged(s.via.addr, covered, s.node.id);
  return known;
}
