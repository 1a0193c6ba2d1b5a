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
  const node = parseNodeAddr(s.node.addr);
  if (!known) {
    const { host, port } = parseNodeAddr(s.via.addr);
    await (await ctx.conn(s.node.addr)).call("cluster", "meet", host, port);
  }
  ctx.emit({ type: "wait", what: `${s.node.addr} to be known by every member` });
  // Gossip spreads the new node, except to members that banned its id with CLUSTER FORGET in the
  // last 60 s (a node removed and added back keeps its id): those are told by an explicit MEET.
  const lastMeet = new Map<string, number>();
  await ctx.waitUntil(`every member knows ${s.node.addr}`, async () => {
    const members = await ctx.members(s.via.addr);
    if (!members.some((m) => m.id === s.node.id)) return `${s.via.addr} does not know it yet`;
    const missing: string[] = [];
    for (const m of members) {
      if (m.id === s.node.id) continue;
      const v = await ctx.view(m.addr);
      if (v.some((e) => e.id === s.node.id && !e.flags.includes("handshake"))) continue;
      missing.push(m.addr);
      if (Date.now() - (lastMeet.get(m.addr) ?? 0) > 2000) {
        lastMeet.set(m.addr, Date.now());
        await (await ctx.conn(m.addr)).call("cluster", "meet", node.host, node.port);
      }
    }
    return missing.length === 0 ? null : `not yet known by ${missing.join(", ")}`;
  });
  await ctx.waitConverged(s.via.addr, covered, s.node.id);
  return known;
}
