/**
 * Reads a live cluster into an ObservedCluster. Every connection is read-only:
 * observe never sends a command that changes a node.
 */
import { NodeClient, describe, type Credentials } from "../redis/connect.js";
import { parseClusterNodes, parseInfo, type NodeEntry } from "../redis/cluster-nodes.js";
import { compareAddr, normalizeAddr, type NodeAddr } from "../redis/node-key.js";
import { AuthFailedError, ClusterStateError, NodeUnreachableError, ShardformError } from "../errors.js";
import { compactViews, findDisagreements } from "./disagreements.js";
import type { ObservedCluster, ObservedNode, Outsider, ViewEntry } from "./types.js";

export interface ObserveOptions {
  seeds: NodeAddr[];
  /** Spec nodes to probe when they are not members (new nodes to be added). */
  probe?: NodeAddr[];
  credentials?: Credentials;
  /** Called with a short status line while observing. */
  onProgress?: (msg: string) => void;
}

interface NodeReading {
  addr: NodeAddr;
  entries: NodeEntry[];
  info: Record<string, string>;
  clusterInfo: Record<string, string>;
  keys: number;
}

async function read(addr: NodeAddr, credentials?: Credentials): Promise<NodeReading> {
  const c = await NodeClient.connect(addr, { readOnly: true, ...(credentials ? { credentials } : {}) });
  try {
    const res = await c.pipeline([["cluster", "nodes"], ["cluster", "info"], ["info", "replication"], ["dbsize"]]);
    for (const [err] of res) if (err) throw err;
    const nodesText = res[0]![1] as string;
    return {
      addr,
      entries: parseClusterNodes(nodesText),
      clusterInfo: parseInfo(res[1]![1] as string),
      info: parseInfo(res[2]![1] as string),
      keys: Number(res[3]![1]),
    };
  } catch (err) {
    if (/cluster support disabled/i.test(describe(err))) {
      throw new ClusterStateError(`${addr} is not running in cluster mode: start it with cluster-enabled yes`);
    }
    throw err instanceof ShardformError ? err : new NodeUnreachableError(addr, describe(err));
  } finally {
    await c.close();
  }
}

function toView(e: NodeEntry): ViewEntry {
  return {
    id: e.id,
    addr: e.addr,
    role: e.role,
    masterId: e.masterId,
    flags: e.flags.filter((f) => f !== "myself") as ViewEntry["flags"],
    linkConnected: e.linkConnected,
    slots: e.slots,
  };
}

function self(r: NodeReading): NodeEntry {
  const me = r.entries.find((e) => e.flags.includes("myself"));
  if (!me) throw new ClusterStateError(`${r.addr} did not list itself in CLUSTER NODES`);
  return me;
}

export async function observeCluster(opts: ObserveOptions): Promise<ObservedCluster> {
  const progress = opts.onProgress ?? (() => {});
  const seeds = opts.seeds.map(normalizeAddr);
  const readings = new Map<NodeAddr, NodeReading>();
  const failures = new Map<NodeAddr, string>();

  const readMany = async (addrs: NodeAddr[]): Promise<void> => {
    await Promise.all(
      addrs.map(async (a) => {
        if (readings.has(a) || failures.has(a)) return;
        try {
          readings.set(a, await read(a, opts.credentials));
        } catch (err) {
          if (err instanceof ClusterStateError || err instanceof AuthFailedError) throw err;
          failures.set(a, err instanceof NodeUnreachableError ? err.causeMessage : describe(err));
        }
      }),
    );
  };

  progress(`reading ${seeds.length} seed node(s)`);
  await readMany(seeds);
  // The cluster is the component of the seed that knows the most members.
  const seedReadings = seeds.map((s) => readings.get(s)).filter((r): r is NodeReading => !!r);
  if (seedReadings.length === 0) {
    const first = seeds[0]!;
    throw new NodeUnreachableError(first, failures.get(first) ?? "no seed answered");
  }
  const anchor = [...seedReadings].sort((a, b) => b.entries.length - a.entries.length)[0]!;
  const anchorIds = new Set(anchor.entries.map((e) => e.id));

  // Discover every member: whatever any reachable member lists (handshakes excluded).
  const memberAddr = new Map<string, NodeAddr>();
  const frontier: NodeReading[] = [anchor];
  while (frontier.length > 0) {
    const r = frontier.pop()!;
    const toRead: NodeAddr[] = [];
    for (const e of r.entries) {
      if (e.flags.includes("handshake") || e.flags.includes("noaddr")) continue;
      const addr = e.flags.includes("myself") ? r.addr : e.addr;
      if (!memberAddr.has(e.id)) {
        memberAddr.set(e.id, addr);
        toRead.push(addr);
      }
    }
    progress(`reading ${toRead.length} member(s)`);
    await readMany(toRead);
    for (const a of toRead) {
      const next = readings.get(a);
      if (next && !frontier.includes(next)) frontier.push(next);
    }
  }

  const nodes: ObservedNode[] = [];
  for (const [id, addr] of memberAddr) {
    const r = readings.get(addr);
    if (r) {
      const me = self(r);
      if (me.id !== id) {
        // The address now answers with another id: the old member is gone and something else took its place.
        nodes.push(unreachableNode(id, addr, readings, `answers with id ${me.id.slice(0, 8)}`));
        continue;
      }
      const node: ObservedNode = {
        id,
        addr,
        role: me.role,
        masterId: me.masterId,
        flags: toView(me).flags,
        slots: me.slots,
        configEpoch: me.configEpoch,
        migrating: me.migrating,
        importing: me.importing,
        reachable: true,
        clusterState: r.clusterInfo["cluster_state"] === "ok" ? "ok" : "fail",
        currentEpoch: Number(r.clusterInfo["cluster_current_epoch"] ?? 0),
        knownNodes: Number(r.clusterInfo["cluster_known_nodes"] ?? r.entries.length),
        keys: r.keys,
        view: r.entries.filter((e) => !e.flags.includes("myself")).map(toView).sort((a, b) => a.id.localeCompare(b.id)),
      };
      if (me.role === "replica") node.masterLinkUp = r.info["master_link_status"] === "up";
      nodes.push(node);
    } else {
      nodes.push(unreachableNode(id, addr, readings, failures.get(addr) ?? "unreachable"));
    }
  }
  nodes.sort((a, b) => compareAddr(a.addr, b.addr));

  // Probe spec nodes that are not members.
  const memberAddrs = new Set(nodes.map((n) => n.addr));
  const probe = [...new Set([...(opts.probe ?? []).map(normalizeAddr), ...seeds])].filter((a) => !memberAddrs.has(a));
  await readMany(probe);
  const outsiders: Outsider[] = probe
    .map((addr): Outsider => {
      const r = readings.get(addr);
      if (!r) return { addr, state: "unreachable", detail: failures.get(addr) ?? "unreachable" };
      const me = self(r);
      const base = { addr, id: me.id, keys: r.keys, knownNodes: r.entries.length };
      if (anchorIds.has(me.id)) return { ...base, state: "other-cluster", detail: "listed by the cluster under another address" };
      if (r.entries.length > 1 || me.slots.length > 0) {
        return { ...base, state: "other-cluster", detail: `knows ${r.entries.length - 1} other node(s) and owns ${me.slots.length} slot range(s)` };
      }
      if (r.keys > 0) return { ...base, state: "has-keys", detail: `holds ${r.keys} key(s)` };
      return { ...base, state: "empty" };
    })
    .sort((a, b) => compareAddr(a.addr, b.addr));

  const compact = compactViews(nodes);
  return {
    kind: "shardform-snapshot",
    formatVersion: 1,
    nodes: compact,
    outsiders,
    disagreements: findDisagreements(compact),
  };
}

/** A member nobody could read: describe it as its peers see it. */
function unreachableNode(id: string, addr: NodeAddr, readings: Map<NodeAddr, NodeReading>, why: string): ObservedNode {
  let seen: NodeEntry | undefined;
  for (const r of readings.values()) {
    seen = r.entries.find((e) => e.id === id);
    if (seen) break;
  }
  return {
    id,
    addr,
    role: seen?.role ?? "master",
    masterId: seen?.masterId ?? null,
    flags: (seen?.flags.filter((f) => f !== "myself") ?? []) as ObservedNode["flags"],
    configEpoch: seen?.configEpoch ?? 0,
    slots: seen?.slots ?? [],
    migrating: [],
    importing: [],
    reachable: false,
    unreachableReason: why,
  };
}
