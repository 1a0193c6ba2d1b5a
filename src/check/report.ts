/** The health report of `shardform check`, computed from an observed topology. Pure. */
import { equalShareImbalance, imbalancePercent, weightedCounts } from "../util/shares.js";
import type { ObservedCluster, ObservedNode } from "../observe/types.js";
import { formatBytes } from "../util/bytes.js";
import { SLOT_COUNT, countSlots, formatRanges } from "../slots.js";
import { hostWarnings, shortList } from "../plan/hosts.js";

export type Band = "excellent" | "good" | "acceptable" | "needs rebalancing";

export interface HealthReport {
  healthy: boolean;
  overview: {
    nodes: number;
    masters: number;
    replicas: number;
    slotsCovered: number;
    keys: number;
    clusterState: "ok" | "fail" | "mixed";
    currentEpoch: number;
  };
  nodes: {
    addr: string;
    id: string;
    role: "master" | "replica";
    slots: number;
    ranges: string;
    master: string | null;
    keys: number | null;
    flags: string[];
    reachable: boolean;
  }[];
  /** By slot counts; `keys` and `memory` (used_memory_dataset) the same way, when the masters answered. */
  imbalance: { percent: number; band: Band; keys?: { percent: number; band: Band }; memory?: { percent: number; band: Band } };
  openSlots: string[];
  /** Keys held in slots their node does not own (clients cannot reach them). */
  strayKeys: string[];
  disagreements: string[];
  /** Applies holding the in-cluster lease. */
  applies: string[];
  problems: string[];
  /** Worth knowing; they do not make the cluster unhealthy. */
  warnings: string[];
}

export function band(percent: number): Band {
  if (percent <= 2) return "excellent";
  if (percent <= 5) return "good";
  if (percent <= 10) return "acceptable";
  return "needs rebalancing";
}

export function healthReport(o: ObservedCluster): HealthReport {
  const byId = new Map(o.nodes.map((n) => [n.id, n]));
  const masters = o.nodes.filter((n) => n.role === "master");
  const owners = new Uint16Array(SLOT_COUNT);
  for (const m of masters) for (const [a, b] of m.slots) for (let s = a; s <= b; s++) owners[s]! += 1;
  let covered = 0;
  let doubled = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (owners[s]! > 0) covered++;
    if (owners[s]! > 1) doubled++;
  }
  const states = new Set(o.nodes.filter((n) => n.reachable).map((n) => n.clusterState));
  const counts = masters.map((m) => countSlots(m.slots));
  const percent = masters.length === 0 ? 0 : imbalancePercent(counts, weightedCounts(SLOT_COUNT, masters.map(() => 1)));
  /** A master's deviation from an equal share of `values`' total, as the slot imbalance is. */
  const deviationOf = (values: (number | undefined)[]): { percent: number; band: Band } | undefined => {
    if (values.length === 0 || values.some((v) => v === undefined)) return undefined;
    if (values.every((v) => v === 0)) return undefined;
    const p = equalShareImbalance(values as number[]);
    return { percent: Math.round(p * 10) / 10, band: band(p) };
  };
  const owning = masters.filter((m) => m.slots.length > 0);
  const byKeys = deviationOf(owning.map((m) => m.keys));
  const byMemory = deviationOf(owning.map((m) => m.memoryDataset));
  const openSlots: string[] = [];
  for (const n of o.nodes) {
    for (const m of n.migrating) openSlots.push(`slot ${m.slot}: MIGRATING on ${n.addr} to ${byId.get(m.peerId)?.addr ?? m.peerId.slice(0, 8)}`);
    for (const i of n.importing) openSlots.push(`slot ${i.slot}: IMPORTING on ${n.addr} from ${byId.get(i.peerId)?.addr ?? i.peerId.slice(0, 8)}`);
  }
  const strayKeys: string[] = [];
  for (const n of o.nodes) {
    for (const s of n.strayKeys ?? []) {
      const owner = masters.find((m) => m.slots.some(([a, b]) => s.slot >= a && s.slot <= b));
      strayKeys.push(`${n.addr} holds ${s.keys} key(s) of slot ${s.slot}${s.db ? ` in database ${s.db}` : ""}, which ${owner ? owner.addr : "no master"} owns`);
    }
  }
  const problems: string[] = [];
  if (covered < SLOT_COUNT) problems.push(`only ${covered}/${SLOT_COUNT} slots are covered`);
  if (doubled > 0) problems.push(`${doubled} slot(s) are claimed by more than one master`);
  if (states.has("fail")) problems.push(`cluster_state is fail on ${o.nodes.filter((n) => n.clusterState === "fail").map((n) => n.addr).join(", ")}`);
  for (const n of o.nodes) {
    if (!n.reachable) problems.push(`${n.addr} cannot be reached (${n.unreachableReason ?? "unreachable"})`);
    if (n.flags.includes("fail")) problems.push(`${n.addr} is flagged as failed`);
    if (n.role === "replica" && n.reachable && n.masterLinkUp === false && !n.syncing) problems.push(`${n.addr}: replication link to its master is down`);
  }
  if (openSlots.length > 0) problems.push(`${openSlots.length} open slot(s): an interrupted move; \`shardform plan\` finishes it`);
  if (strayKeys.length > 0) {
    problems.push(
      `${strayKeys.length} slot(s) have keys on a node that does not own them: clients cannot read those keys (if a shardform plan moved those slots, \`shardform plan SPEC --history THAT_PLAN.json\` moves them to the owner)`,
    );
  }
  if (o.disagreements.length > 0) problems.push(`${o.disagreements.length} disagreement(s) between members' views`);
  const applies = (o.applies ?? []).map((h) => `pid ${h.pid} on ${h.host}, started ${h.since} (holds the lease on ${h.nodes.length} node(s))`);
  const warnings = [...syncNotes(o.nodes, byId), ...hostWarnings(o.nodes)];
  const epochs = o.nodes.map((n) => n.currentEpoch ?? 0);
  return {
    healthy: problems.length === 0,
    overview: {
      nodes: o.nodes.length,
      masters: masters.length,
      replicas: o.nodes.length - masters.length,
      slotsCovered: covered,
      keys: masters.reduce((s, m) => s + (m.keys ?? 0), 0),
      clusterState: states.size === 1 ? ([...states][0] ?? "fail") : "mixed",
      currentEpoch: Math.max(0, ...epochs),
    },
    nodes: o.nodes.map((n) => ({
      addr: n.addr,
      id: n.id,
      role: n.role,
      slots: countSlots(n.slots),
      ranges: n.role === "master" ? formatRanges(n.slots) : "",
      master: n.masterId ? (byId.get(n.masterId)?.addr ?? n.masterId) : null,
      keys: n.keys ?? null,
      flags: n.flags,
      reachable: n.reachable,
    })),
    imbalance: {
      percent: Number.isFinite(percent) ? Math.round(percent * 10) / 10 : 100,
      band: band(percent),
      ...(byKeys ? { keys: byKeys } : {}),
      ...(byMemory ? { memory: byMemory } : {}),
    },
    openSlots,
    strayKeys,
    disagreements: o.disagreements,
    applies,
    problems,
    warnings,
  };
}

export function renderHealth(r: HealthReport, color: boolean): string {
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const o = r.overview;
  const out: string[] = [];
  out.push(
    `Cluster: ${o.nodes} nodes (${o.masters} masters, ${o.replicas} replicas), slots ${o.slotsCovered}/${SLOT_COUNT}, ~${o.keys} keys, cluster_state ${o.clusterState}, epoch ${o.currentEpoch}`,
  );
  const im = r.imbalance;
  out.push(
    `Imbalance: slots ${im.percent}% (${im.band})` +
      (im.keys ? `, keys ${im.keys.percent}% (${im.keys.band})` : "") +
      (im.memory ? `, memory ${im.memory.percent}% (${im.memory.band})` : "") +
      (im.keys?.band === "needs rebalancing" || im.memory?.band === "needs rebalancing" ? "; balance by what masters hold with cluster.balance.by (see the README)" : ""),
  );
  out.push("");
  for (const n of r.nodes) {
    const role = n.role === "master" ? `master  ${String(n.slots).padStart(5)} slots  ${n.ranges}` : `replica of ${n.master ?? "-"}`;
    const flags = n.flags.length ? `  [${n.flags.join(",")}]` : "";
    const keys = n.keys === null ? "" : `  keys ${n.keys}`;
    out.push(`  ${n.addr.padEnd(21)} ${n.id.slice(0, 8)}  ${role}${keys}${flags}${n.reachable ? "" : "  UNREACHABLE"}`);
  }
  out.push("");
  if (r.openSlots.length) out.push("Open slots:", ...r.openSlots.map((s) => `  ${s}`), "");
  if (r.strayKeys.length) out.push("Keys in slots their node does not own:", ...r.strayKeys.map((s) => `  ${s}`), "");
  if (r.applies.length) out.push("Apply in progress:", ...r.applies.map((s) => `  ${s}`), "");
  if (r.warnings.length) out.push(...r.warnings.map((w) => paint("33", `Warning: ${shortList(w)}`)), "");
  if (r.disagreements.length) out.push("Disagreements:", ...r.disagreements.map((s) => `  ${s}`), "");
  if (r.healthy) out.push(paint("32", "[OK] all slots covered, every node agrees, no open slot."));
  else out.push(paint("31", "[ERR] unhealthy:"), ...r.problems.map((p) => paint("31", `  - ${p}`)));
  return out.join("\n") + "\n";
}

/**
 * Replicas in their first (full) sync: a state of their own that passes by itself, not a broken link.
 * A warning (the exit code stays), with how far it got.
 */
function syncNotes(nodes: readonly ObservedNode[], byId: ReadonlyMap<string, ObservedNode>): string[] {
  return nodes.flatMap((n) => {
    if (!n.syncing || !n.reachable) return [];
    const master = n.masterId ? (byId.get(n.masterId)?.addr ?? n.masterId) : "its master";
    const { readBytes, totalBytes } = n.syncing;
    const progress =
      totalBytes > 0
        ? `${formatBytes(readBytes)} of ${formatBytes(totalBytes)} (${Math.floor((100 * readBytes) / totalBytes)}%)`
        : totalBytes === 0
          ? "starting"
          : `${formatBytes(readBytes)} so far (the master streams its data disklessly; its size is known at the end)`;
    return [`${n.addr}: first sync with ${master} in progress: ${progress}; it serves no reads until it ends, and check passes once it has`];
  });
}
