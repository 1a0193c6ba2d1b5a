/**
 * meet: CLUSTER MEET sent to each new node (all the steps of a batch together), then one shared wait
 * until every member knows every new node with a connected link (and, for a cluster that served every
 * slot, reports cluster_state:ok again). CLUSTER MEET takes an IP address, so names are resolved first.
 *
 * A node forgotten less than 60 s ago is banned: Redis 7.0 ignores it in gossip (an explicit MEET
 * gets past that), while Valkey and Redis 7.2+ also gossip the ban and delete the node again wherever
 * it was met. Then it can only join once the ban expires: the wait says so and lasts long enough.
 */
import { ClusterChangedError } from "../../errors.js";
import { ipPort } from "../../redis/resolve.js";
import { SLOT_COUNT } from "../../slots.js";
import type { StepOf } from "../../plan/types.js";
import type { ExecCtx } from "../context.js";
import { meetRefusal } from "../../safety/rules.js";
import type { NodeEntry } from "../../redis/cluster-nodes.js";

type MeetStep = StepOf<"meet">;

export async function meet(steps: MeetStep[], ctx: ExecCtx): Promise<void> {
  const via = steps[0]!.via;
  await ctx.reads.selfOf(via);
  const covered = Number((await ctx.reads.clusterInfo(via.addr))["cluster_slots_assigned"] ?? 0) === SLOT_COUNT;
  await introduce(steps, ctx, via);
  ctx.emit({ type: "wait", what: `${steps.length === 1 ? steps[0]!.node.addr : `${steps.length} new nodes`} to be known by every member` });
  await waitKnown(steps, ctx, via);
  await waitLinked(ctx, via, covered);
}

/** Checks each new node again (its id; safety rule 6, also on resume) and sends it CLUSTER MEET toward `via`. */
async function introduce(steps: MeetStep[], ctx: ExecCtx, via: MeetStep["via"]): Promise<void> {
  const viaView = await ctx.reads.view(via.addr);
  // A cluster made from bare nodes: the first node knows nobody yet either.
  if (viaView.length === 1) await ownEpoch(ctx, via.addr, viaView, viaView);
  const members = new Set(viaView.filter((e) => !e.flags.includes("handshake")).map((e) => e.id));
  const viaIp = await ipPort(via.addr);
  await Promise.all(
    steps.map(async (s) => {
      const c = await ctx.conn(s.node.addr);
      const id = String(await c.call("cluster", "myid"));
      if (id !== s.node.id) {
        throw new ClusterChangedError(`${s.node.addr} now answers with node id ${id.slice(0, 8)}, not ${s.node.id.slice(0, 8)} as in the plan: the node was replaced or reset. Plan again.`);
      }
      // Safety rule 6, checked every time (also on resume): nothing on it may merge into this cluster.
      const [own, keys] = await Promise.all([ctx.reads.view(s.node.addr), c.call("dbsize")]);
      const why = meetRefusal(own, Number(keys), members);
      if (why) {
        throw new ClusterChangedError(`refusing to meet ${s.node.addr}: ${why}. The plan found it empty, so something changed it; check it, then plan again (a node to be wiped goes under cluster.allowReset).`);
      }
      if (!viaView.some((e) => e.id === s.node.id && !e.flags.includes("handshake"))) {
        await ownEpoch(ctx, s.node.addr, own, viaView);
        await (await ctx.conn(s.node.addr)).call("cluster", "meet", viaIp.ip, viaIp.port);
      }
    }),
  );
}

/**
 * Gives a node that knows nobody yet, with config epoch 0, an epoch of its own before it meets the
 * cluster (CLUSTER SET-CONFIG-EPOCH, as redis-cli does when it creates a cluster; the server takes it
 * only then): above every epoch `clusterView` shows, and apart from every other node this apply gave
 * one. Masters that join with the same epoch (0) collide; Redis settles that by gossip, bumping one of
 * each pair at a time, for minutes with 100 masters, and a master bumped above a slot's new owner
 * takes the slot back, whose keys the new owner then deletes.
 */
async function ownEpoch(ctx: ExecCtx, addr: string, own: NodeEntry[], clusterView: NodeEntry[]): Promise<void> {
  const me = own.find((e) => e.flags.includes("myself"));
  if (own.length !== 1 || !me || me.configEpoch !== 0) return;
  const epoch = ctx.nextConfigEpoch(Math.max(0, ...clusterView.map((e) => e.configEpoch)));
  await (await ctx.conn(addr)).call("cluster", "set-config-epoch", epoch).catch(() => undefined); // best effort: add-slots bumps a master left at 0
}

/** A new node forgotten less than 60 s ago is banned by the members that forgot it (see the module comment). */
const BAN_MS = 60_000;

/**
 * Waits until every member knows every new node. Gossip spreads new nodes, except to members that
 * banned a node's id with CLUSTER FORGET in the last 60 s (a node removed and added back keeps its id):
 * those are told by an explicit MEET. A new node that a member listed and then dropped is being deleted
 * by a spreading ban: from then on, the wait lasts until the ban has surely expired.
 */
async function waitKnown(steps: MeetStep[], ctx: ExecCtx, via: MeetStep["via"]): Promise<void> {
  const ips = new Map(await Promise.all(steps.map(async (s) => [s.node.id, await ipPort(s.node.addr)] as const)));
  const listed = new Set<string>();
  let lostAt: number | null = null;
  const lost = (node: MeetStep["node"]): void => {
    if (lostAt !== null) return;
    lostAt = Date.now();
    ctx.emit({
      type: "note",
      message:
        `${node.addr} was accepted, then dropped again: members still ban its node id (it was removed from this cluster less than 60 s ago, ` +
        `and Valkey and Redis 7.2+ spread the ban). Waiting until the ban has expired, about a minute`,
    });
  };
  /**
   * An explicit MEET from `from` to a new node it still does not know, paced like ExecCtx.nudge: gossip
   * is given half a second (it usually wins on a few nodes; on many, a direct MEET is faster), then a
   * MEET at most every 2 s.
   */
  const remeet = async (fromId: string, fromAddr: string, node: MeetStep["node"]): Promise<void> => {
    if (!ctx.waits.nudgeDue(`meet ${fromId} ${node.id}`)) return;
    const { ip, port } = ips.get(node.id)!;
    await (await ctx.conn(fromAddr)).call("cluster", "meet", ip, port);
  };
  await ctx.waits.waitUntil(
    `every member knows ${steps.map((s) => s.node.addr).join(", ")}`,
    async () => {
      const r = await ctx.reads.readCluster();
      const missing: string[] = [];
      for (const s of steps) {
        for (const [id, v] of r.views) {
          if (id === s.node.id) continue;
          const key = `${id} ${s.node.id}`;
          if (v.some((e) => e.id === s.node.id && !e.flags.includes("handshake"))) {
            listed.add(key);
            continue;
          }
          if (listed.has(key)) lost(s.node);
          const m = r.members.find((x) => x.id === id);
          missing.push(`${s.node.addr} by ${m?.addr ?? id.slice(0, 8)}`);
          if (m) await remeet(id, m.addr, s.node);
        }
        if (!r.members.some((m) => m.id === s.node.id)) missing.push(`${s.node.addr} (not yet known by ${via.addr})`);
      }
      if (missing.length > 0) return `not yet known: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`;
      if (lostAt !== null && Date.now() - lostAt < BAN_MS + 5000) return `waiting for the ban on a recently removed node id to expire (${Math.ceil((lostAt + BAN_MS + 5000 - Date.now()) / 1000)} s left)`;
      return null;
    },
    Math.max(ctx.options.waitTimeoutMs, 2 * BAN_MS + 30_000),
  );
}

/** Waits until every member knows every other with a healthy link (and, for a cluster that served every slot, cluster_state:ok). */
async function waitLinked(ctx: ExecCtx, via: MeetStep["via"], covered: boolean): Promise<void> {
  await ctx.waits.waitUntil(covered ? "every member knows every other and reports cluster_state:ok" : "every member knows every other", async () => {
    const r = await ctx.reads.readCluster();
    const ids = r.members.map((m) => m.id).sort().join(",");
    for (const m of r.members) {
      const v = r.views.get(m.id);
      if (!v) continue; // a member that is down is not waited for
      const vids = v.filter((e) => !e.flags.includes("handshake")).map((e) => e.id).sort().join(",");
      if (vids !== ids) return `${m.addr} knows ${v.length} node(s), ${via.addr} knows ${r.members.length}`;
      const bad = v.find((e) => !e.flags.includes("myself") && !r.down.has(e.id) && (!e.linkConnected || e.flags.includes("fail") || e.flags.includes("pfail")));
      if (bad) return `${m.addr} has no healthy link to ${bad.addr}`;
      if (covered && r.info.get(m.id)?.["cluster_state"] !== "ok") return `${m.addr} reports cluster_state:${r.info.get(m.id)?.["cluster_state"]}`;
    }
    return null;
  });
}
