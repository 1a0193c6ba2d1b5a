/** Builders for observed topologies and specs, for pure planner tests. */
import { createHash } from "node:crypto";
import type { ObservedCluster, ObservedNode, Outsider } from "../../src/observe/types.js";
import type { ClusterSpec, ShardSpec } from "../../src/spec/types.js";
import { parseRange, type SlotRange } from "../../src/slots.js";

export function idOf(addr: string): string {
  return createHash("sha1").update(addr).digest("hex");
}

export const A = (port: number): string => `127.0.0.1:${port}`;

export interface MasterDesc {
  addr: string;
  slots?: string[];
  keys?: number;
  replicas?: string[];
  migrating?: [number, string][];
  importing?: [number, string][];
}

export function observed(masters: MasterDesc[], outsiders: (string | Partial<Outsider> & { addr: string })[] = []): ObservedCluster {
  const nodes: ObservedNode[] = [];
  for (const m of masters) {
    nodes.push({
      id: idOf(m.addr),
      addr: m.addr,
      role: "master",
      masterId: null,
      flags: [],
      configEpoch: 1,
      slots: (m.slots ?? []).map((r) => parseRange(r) as SlotRange),
      migrating: (m.migrating ?? []).map(([slot, peer]) => ({ slot, peerId: idOf(peer) })),
      importing: (m.importing ?? []).map(([slot, peer]) => ({ slot, peerId: idOf(peer) })),
      reachable: true,
      keys: m.keys ?? 0,
    });
    for (const r of m.replicas ?? []) {
      nodes.push({
        id: idOf(r),
        addr: r,
        role: "replica",
        masterId: idOf(m.addr),
        flags: [],
        configEpoch: 1,
        slots: [],
        migrating: [],
        importing: [],
        reachable: true,
        keys: m.keys ?? 0,
      });
    }
  }
  nodes.sort((a, b) => a.addr.localeCompare(b.addr));
  return {
    kind: "shardform-snapshot",
    formatVersion: 2,
    nodes,
    outsiders: outsiders.map((o) => (typeof o === "string" ? { addr: o, id: idOf(o), state: "empty", keys: 0, knownNodes: 1 } : { id: idOf(o.addr), state: "empty", ...o })),
    aliases: [],
    disagreements: [],
  };
}

export function spec(shards: (Partial<ShardSpec> & { master: string })[], extra: Partial<ClusterSpec> = {}): ClusterSpec {
  return {
    seeds: [shards[0]!.master],
    threshold: 2,
    allowReset: [],
    protect: [],
    shards: shards.map((s) => ({ replicas: [], weight: 1, ...s })),
    ...extra,
  };
}

/** A failover as Redis makes it, in an observed topology: the replica takes the master's slots and role. */
export function failOver(master: ObservedNode, replica: ObservedNode): void {
  replica.role = "master";
  replica.masterId = null;
  replica.slots = master.slots;
  master.slots = [];
  master.role = "replica";
  master.masterId = replica.id;
}

/**
 * A shard split by a failover (safety rule 9): slot 100 moved from 7000 to 7001; 7001's replica 7004 was
 * promoted knowing only 5461-10922, so 7001 kept slot 100 alone, and 7004 holds `keys` copies of its
 * keys. 7004's previous replication id is `replId2` (7001's current one is "r7001": they match by default).
 * `ownerKept` and `holderTook` change which slots each half of the shard has (slot 100 stays 7001's).
 */
export function splitShard(keys: number, replId2 = "r7001", ownerKept: string[] = ["100-100"], holderTook = ["5461-10922"]): ObservedCluster {
  const o = observed([
    { addr: A(7000), slots: ["0-99", "101-5460"], replicas: [A(7003)] },
    { addr: A(7001), slots: ownerKept },
    { addr: A(7004), slots: holderTook },
    { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
  ]);
  const n = (a: string) => o.nodes.find((x) => x.addr === a)!;
  Object.assign(n(A(7004)), { strayKeys: [{ slot: 100, keys }], replId2 });
  n(A(7001)).replId = "r7001";
  return o;
}
