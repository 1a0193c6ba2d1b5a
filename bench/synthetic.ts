/**
 * Synthetic observed clusters for the planner benchmark: `masters` shards of one master and one
 * replica, balanced, every node's view complete and in agreement (stored as observe stores a healthy
 * cluster's views: nothing left to disagree), and a spec that adds `added` empty shards, so that the plan has meets and slot moves.
 */
import { createHash } from "node:crypto";
import { compactViews } from "../src/observe/disagreements.js";
import type { ObservedCluster, ObservedNode, ViewEntry } from "../src/observe/types.js";
import type { SlotRange } from "../src/slots.js";

const addrOf = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:6379`;
const idOf = (addr: string): string => createHash("sha1").update(addr).digest("hex");

export function syntheticCluster(masters: number, added: number): { observed: ObservedCluster; specYaml: string } {
  const nodes: ObservedNode[] = [];
  const per = Math.floor(16384 / masters);
  const shards: { master: string; replica: string }[] = [];
  for (let m = 0; m < masters; m++) {
    const lo = m * per;
    const hi = m === masters - 1 ? 16383 : lo + per - 1;
    const master = addrOf(2 * m + 1);
    const replica = addrOf(2 * m + 2);
    shards.push({ master, replica });
    const base = { flags: [], configEpoch: m + 1, migrating: [], importing: [], reachable: true, clusterState: "ok" as const, keys: 1000 };
    nodes.push({ ...base, id: idOf(master), addr: master, role: "master", masterId: null, slots: [[lo, hi] as SlotRange] });
    nodes.push({ ...base, id: idOf(replica), addr: replica, role: "replica", masterId: idOf(master), slots: [], masterLinkUp: true });
  }
  const entries: ViewEntry[] = nodes.map((n) => ({ id: n.id, addr: n.addr, role: n.role, masterId: n.masterId, flags: [], linkConnected: true, slots: n.slots }));
  for (const n of nodes) {
    n.knownNodes = nodes.length;
    n.view = entries.filter((e) => e.id !== n.id);
  }
  nodes.sort((a, b) => a.addr.localeCompare(b.addr));
  // What observe records: each view reduced to its disagreements (none here).
  const compact = compactViews(nodes);
  const outsiders: ObservedCluster["outsiders"] = [];
  for (let k = 0; k < added; k++) {
    const master = addrOf(2 * (masters + k) + 1);
    const replica = addrOf(2 * (masters + k) + 2);
    shards.push({ master, replica });
    for (const a of [master, replica]) outsiders.push({ addr: a, id: idOf(a), state: "empty", keys: 0, knownNodes: 1 });
  }
  const specYaml = [
    "cluster:",
    `  seeds: ["${shards[0]!.master}"]`,
    "shards:",
    ...shards.flatMap((s) => [`  - master: ${s.master}`, `    replicas: [${s.replica}]`]),
    "",
  ].join("\n");
  return { observed: { kind: "shardform-snapshot", formatVersion: 2, nodes: compact, outsiders, aliases: [], disagreements: [] }, specYaml };
}
