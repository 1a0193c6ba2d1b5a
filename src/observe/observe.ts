/**
 * Reads a live cluster into an ObservedCluster. Every connection is read-only: observe never sends a
 * command that changes a node. A node is its node id: readings are keyed by the id each node gives,
 * whatever address it was reached at.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { NodeClient, describe, type Access } from "../redis/connect.js";
import { listedReplicas, parseClusterNodes, parseInfo, replicationIds, type NodeEntry } from "../redis/cluster-nodes.js";
import { parseClientList, parseLeaseName } from "../redis/client-list.js";
import { compareAddr, formatNodeAddr, normalizeAddr, parseNodeAddr, type NodeAddr } from "../redis/node-key.js";
import { AuthFailedError, ClusterStateError, GENERIC_UNREACHABLE_HINT, NodeTimeoutError, NodeUnreachableError, PermissionError, ShardformError } from "../errors.js";
import { SLOT_COUNT, expandRanges } from "../slots.js";
import { mapLimit } from "../util/limit.js";
import { compactViews, findDisagreements } from "./disagreements.js";
import type { Alias, ApplyHolder, ObservedCluster, ObservedNode, Outsider, ViewEntry } from "./types.js";

export interface ObserveOptions {
  seeds: NodeAddr[];
  /** Spec nodes to probe when they are not members (new nodes to be added, or members written another way). */
  probe?: NodeAddr[];
  access?: Access;
  /** Called with a short status line while observing. */
  onProgress?: (msg: string) => void;
  /** Reads in flight at once (default 32). */
  concurrency?: number;
  /** Look for applies in progress (CLIENT LIST); default true. */
  leases?: boolean;
}

interface NodeReading {
  /** The address it was reached at. */
  addr: NodeAddr;
  me: NodeEntry;
  entries: NodeEntry[];
  info: Record<string, string>;
  clusterInfo: Record<string, string>;
  keys: number;
  strayKeys: { slot: number; keys: number; db?: number }[];
  leaseNames: string[];
}

const DEFAULT_CONCURRENCY = 32;

function selfEntry(addr: NodeAddr, entries: NodeEntry[]): NodeEntry {
  const me = entries.find((e) => e.flags.includes("myself"));
  if (!me) throw new ClusterStateError(`${addr} did not list itself in CLUSTER NODES`);
  return me;
}

/**
 * Keys a master holds in slots it neither owns nor has open. DBSIZE against the counts of its own
 * slots first (one pipeline); only when they differ is every other slot counted.
 */
async function strays(c: NodeClient, me: NodeEntry, keys: number): Promise<{ slot: number; keys: number }[]> {
  if (me.role !== "master" || keys === 0) return [];
  const mine = new Set([...expandRanges(me.slots), ...me.migrating.map((m) => m.slot), ...me.importing.map((m) => m.slot)]);
  const own = [...mine];
  const counts = own.length ? await c.bigPipeline(own.map((s) => ["cluster", "countkeysinslot", s]), 30_000) : [];
  const held = counts.reduce((sum, [err, n]) => sum + (err ? 0 : Number(n)), 0);
  if (held >= keys) return [];
  const others: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (!mine.has(s)) others.push(s);
  const res = await c.bigPipeline(others.map((s) => ["cluster", "countkeysinslot", s]), 30_000);
  const out: { slot: number; keys: number }[] = [];
  res.forEach(([err, n], i) => {
    if (!err && Number(n) > 0) out.push({ slot: others[i]!, keys: Number(n) });
  });
  return out;
}

/** Databases other than 0 that hold keys, from INFO keyspace (Valkey 9 with cluster-databases > 1). */
export function otherDatabases(info: Record<string, string>): number[] {
  return Object.keys(info)
    .flatMap((k) => (/^db([1-9]\d*)$/.test(k) && /keys=[1-9]/.test(info[k]!) ? [Number(k.slice(2))] : []))
    .sort((x, y) => x - y);
}

/** Stray keys in the other databases: each one selected in turn, counted as database 0 is, then 0 again. */
async function straysElsewhere(c: NodeClient, me: NodeEntry, keyspace: Record<string, string>): Promise<{ slot: number; keys: number; db: number }[]> {
  const dbs = otherDatabases(keyspace);
  if (me.role !== "master" || dbs.length === 0) return [];
  const out: { slot: number; keys: number; db: number }[] = [];
  try {
    for (const db of dbs) {
      await c.call("select", db);
      const keys = Number(await c.call("dbsize"));
      for (const s of await strays(c, me, keys)) out.push({ ...s, db });
    }
  } finally {
    await c.call("select", 0).catch(() => undefined);
  }
  return out;
}

async function read(addr: NodeAddr, access: Access | undefined, leases: boolean): Promise<NodeReading> {
  const c = await NodeClient.connect(addr, { readOnly: true, access });
  try {
    const cmds: (string | number)[][] = [["cluster", "nodes"], ["cluster", "info"], ["info", "server"], ["info", "replication"], ["dbsize"], ["info", "memory"], ["info", "keyspace"]];
    if (leases) cmds.push(["client", "list", "type", "normal"]);
    const res = await c.pipeline(cmds);
    for (const [err] of res) if (err) throw err;
    const entries = parseClusterNodes(res[0]![1] as string);
    const me = selfEntry(addr, entries);
    const keys = Number(res[4]![1]);
    const keyspace = parseInfo(res[6]![1] as string);
    const leaseNames = leases ? parseClientList(res[7]![1] as string).map((e) => e.name).filter((n) => parseLeaseName(n)) : [];
    return {
      addr,
      me,
      entries,
      clusterInfo: parseInfo(res[1]![1] as string),
      info: { ...parseInfo(res[2]![1] as string), ...parseInfo(res[3]![1] as string), ...parseInfo(res[5]![1] as string), ...parseInfo(res[6]![1] as string) },
      keys,
      strayKeys: [...(await strays(c, me, keys)), ...(await straysElsewhere(c, me, keyspace))],
      leaseNames,
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

/** "redis 7.0.15" / "valkey 8.0.1" from INFO server. */
function serverName(info: Record<string, string>): string | undefined {
  if (info["valkey_version"]) return `valkey ${info["valkey_version"]}`;
  if (info["redis_version"]) return `${info["server_name"] === "valkey" ? "valkey" : "redis"} ${info["redis_version"]}`;
  return undefined;
}

/** The address a node announces, or the one we reached it at when it announces none (":7000"). */
function announced(e: NodeEntry, reachedAt: NodeAddr): NodeAddr {
  return e.addr.startsWith(":") ? reachedAt : e.addr;
}

/** Reads nodes by address, at most `limit` at once, keeping each reading or why it failed. */
class Reader {
  readonly byAddr = new Map<NodeAddr, NodeReading>();
  readonly failures = new Map<NodeAddr, string>();
  /** The errors behind failures, for a seed whose error says best what to do (TLS, not Redis, ...). */
  readonly errors = new Map<NodeAddr, unknown>();
  private readonly access: Access | undefined;
  private readonly leases: boolean;
  private readonly limit: number;
  constructor(access: Access | undefined, leases: boolean, limit: number) {
    this.access = access;
    this.leases = leases;
    this.limit = limit;
  }

  async readMany(addrs: NodeAddr[]): Promise<void> {
    await mapLimit(
      addrs.filter((a) => !this.byAddr.has(a) && !this.failures.has(a)),
      this.limit,
      async (a) => {
        try {
          this.byAddr.set(a, await read(a, this.access, this.leases));
        } catch (err) {
          if (err instanceof ClusterStateError || err instanceof AuthFailedError || err instanceof PermissionError) throw err;
          this.errors.set(a, err);
          this.failures.set(a, err instanceof NodeUnreachableError ? err.causeMessage : err instanceof NodeTimeoutError ? err.message : describe(err));
        }
      },
    );
  }
}

interface Component {
  /** Member id -> the address it announces. */
  ids: Map<string, NodeAddr>;
  readings: Map<string, NodeReading>;
}

/** Every member reachable from `anchor` through members' views; readings by node id. */
async function discover(anchor: NodeReading, reader: Reader, progress: (msg: string) => void): Promise<Component> {
  const ids = new Map<string, NodeAddr>();
  const readings = new Map<string, NodeReading>([[anchor.me.id, anchor]]);
  ids.set(anchor.me.id, announced(anchor.me, anchor.addr));
  let frontier: NodeReading[] = [anchor];
  while (frontier.length > 0) {
    const toRead: NodeAddr[] = [];
    const wanted = new Map<NodeAddr, string>();
    for (const r of frontier) {
      for (const e of r.entries) {
        if (e.flags.includes("handshake") || e.flags.includes("noaddr") || ids.has(e.id)) continue;
        ids.set(e.id, e.addr);
        toRead.push(e.addr);
        wanted.set(e.addr, e.id);
      }
    }
    if (toRead.length) progress(`reading ${toRead.length} member(s)`);
    await reader.readMany(toRead);
    frontier = [];
    for (const a of toRead) {
      const r = reader.byAddr.get(a);
      if (r && r.me.id === wanted.get(a) && !readings.has(r.me.id)) {
        readings.set(r.me.id, r);
        ids.set(r.me.id, announced(r.me, a));
        frontier.push(r);
      }
    }
  }
  return { ids, readings };
}

/**
 * The cluster is the component of the seed that knows the most members, unless no other member lists
 * that seed: then it is a node that remembers a cluster which has forgotten it (removed, then restarted
 * with its old nodes.conf), and another seed, or a member it lists, anchors the cluster.
 */
async function findCluster(seedReadings: NodeReading[], reader: Reader, progress: (msg: string) => void): Promise<Component> {
  const candidates = [...seedReadings].sort((a, b) => b.entries.length - a.entries.length);
  const rejected = new Set<string>();
  for (let k = 0; k < candidates.length + 1; k++) {
    let anchor = candidates.find((c) => !rejected.has(c.me.id));
    if (!anchor) {
      // Every seed was rejected: anchor on a member the first seed lists that did answer.
      const listed = candidates[0]!.entries.filter((e) => !e.flags.includes("myself")).map((e) => e.addr);
      await reader.readMany(listed);
      anchor = listed.map((a) => reader.byAddr.get(a)).find((r): r is NodeReading => !!r && !rejected.has(r.me.id));
      if (!anchor) break;
    }
    const d = await discover(anchor, reader, progress);
    const a = anchor;
    const listedBack = d.readings.size === 1 || [...d.readings.values()].some((r) => r !== a && r.entries.some((e) => e.id === a.me.id));
    if (listedBack) return d;
    rejected.add(anchor.me.id);
  }
  return discover(candidates[0]!, reader, progress);
}

/** A member as its own reading shows it; `seen` is how its peers see it (for its hostname). */
function memberNode(id: string, addr: NodeAddr, r: NodeReading, seen: NodeEntry | undefined): ObservedNode {
  const me = r.me;
  const hostname = me.hostname ?? seen?.hostname;
  const node: ObservedNode = {
    id,
    addr,
    ...(hostname ? { hostname } : {}),
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
  const info = r.info;
  const server = serverName(info);
  if (server) node.server = server;
  if (r.strayKeys.length) node.strayKeys = r.strayKeys;
  Object.assign(node, replicationIds(info));
  if (me.role === "replica") node.masterLinkUp = info["master_link_status"] === "up";
  if (me.role === "replica" && info["master_sync_in_progress"] === "1") {
    node.syncing = { readBytes: Number(info["master_sync_read_bytes"] ?? 0), totalBytes: Number(info["master_sync_total_bytes"] ?? -1) };
  }
  if (info["used_memory_dataset"] !== undefined) node.memoryDataset = Number(info["used_memory_dataset"]);
  if (info["used_memory"] !== undefined) node.usedMemory = Number(info["used_memory"]);
  if (info["maxmemory"] !== undefined) node.maxmemory = Number(info["maxmemory"]);
  // Databases other than 0 with keys (Valkey 9 with cluster-databases > 1): key-by-key moves see only database 0.
  const others = otherDatabases(info);
  if (others.length) node.otherDatabases = others;
  return node;
}

/** The applies holding a lease, from the lease connections' names the members list. */
function leaseHolders(readings: Iterable<[NodeAddr, NodeReading]>): ApplyHolder[] {
  const holders = new Map<string, ApplyHolder>();
  for (const [addr, r] of readings) {
    for (const name of r.leaseNames) {
      const h = parseLeaseName(name)!;
      const key = `${h.host}:${h.pid}:${h.since}`;
      const holder = holders.get(key) ?? { host: h.host, pid: h.pid, since: h.since, nodes: [] };
      holder.nodes.push(addr);
      holders.set(key, holder);
    }
  }
  return [...holders.values()].sort((a, b) => a.since.localeCompare(b.since));
}

/** Addresses outside the members' own: a member written another way (alias), or a node outside the cluster. */
async function probeOutsiders(probe: NodeAddr[], reader: Reader, nodes: ObservedNode[]): Promise<{ aliases: Alias[]; outsiders: Outsider[] }> {
  const memberIds = new Set(nodes.map((n) => n.id));
  await reader.readMany(probe);
  const aliases: Alias[] = [];
  const outsiders: Outsider[] = [];
  for (const addr of probe) {
    const r = reader.byAddr.get(addr);
    if (r) {
      if (memberIds.has(r.me.id)) {
        aliases.push({ addr, id: r.me.id, how: "answered" });
        continue;
      }
      const server = serverName(r.info);
      const base = { addr, id: r.me.id, keys: r.keys, knownNodes: r.entries.length, ...(server ? { server } : {}) };
      const remembers = r.entries.filter((e) => memberIds.has(e.id)).length;
      if (remembers > 0) {
        outsiders.push({ ...base, state: "other-cluster", detail: `was removed from this cluster (no member lists it) but still remembers ${remembers} of its members` });
      } else if (r.entries.length > 1 || r.me.slots.length > 0) {
        outsiders.push({ ...base, state: "other-cluster", detail: `belongs to another cluster: it knows ${r.entries.length - 1} other node(s), none of them a member of this one, and owns ${r.me.slots.length} slot range(s)` });
      } else if (r.keys > 0) outsiders.push({ ...base, state: "has-keys", detail: `holds ${r.keys} key(s)` });
      else outsiders.push({ ...base, state: "empty" });
      continue;
    }
    // Not reachable at this spelling: a member may still be named so (hostname, or a name resolving to its address).
    const match = await matchUnreachable(addr, nodes);
    if (match) aliases.push(match);
    else outsiders.push({ addr, state: "unreachable", detail: reader.failures.get(addr) ?? "unreachable" });
  }
  aliases.sort((a, b) => a.addr.localeCompare(b.addr));
  outsiders.sort((a, b) => compareAddr(a.addr, b.addr));
  return { aliases, outsiders };
}

export async function observeCluster(opts: ObserveOptions): Promise<ObservedCluster> {
  const progress = opts.onProgress ?? (() => {});
  const leases = opts.leases ?? true;
  const reader = new Reader(opts.access, leases, opts.concurrency ?? DEFAULT_CONCURRENCY);
  const seeds = [...new Set(opts.seeds.map(normalizeAddr))];

  progress(`reading ${seeds.length} seed node(s)`);
  await reader.readMany(seeds);
  const seedReadings = seeds.map((s) => reader.byAddr.get(s)).filter((r): r is NodeReading => !!r);
  if (seedReadings.length === 0) {
    const first = seeds[0]!;
    const err = reader.errors.get(first);
    if ((err instanceof NodeUnreachableError && err.hint !== GENERIC_UNREACHABLE_HINT) || err instanceof NodeTimeoutError) throw err;
    throw new NodeUnreachableError(first, reader.failures.get(first) ?? "no seed answered", "Check that the node is running and that host:port is right (--seed, or the spec's cluster.seeds).");
  }
  const { ids: memberAddr, readings } = await findCluster(seedReadings, reader, progress);

  // Members' hostnames and flags as their peers see them, for those that could not be read.
  const peerView = (id: string): NodeEntry | undefined => {
    for (const r of readings.values()) {
      const e = r.entries.find((x) => x.id === id && !x.flags.includes("myself"));
      if (e) return e;
    }
    return undefined;
  };
  const nodes: ObservedNode[] = [];
  const read: [NodeAddr, NodeReading][] = [];
  for (const [id, addr] of memberAddr) {
    const r = readings.get(id);
    if (r) {
      nodes.push(memberNode(id, addr, r, peerView(id)));
      read.push([addr, r]);
      continue;
    }
    const a = reader.byAddr.get(addr);
    nodes.push(unreachableNode(id, addr, peerView(id), a ? `answers with id ${a.me.id.slice(0, 8)}` : (reader.failures.get(addr) ?? "unreachable")));
  }
  nodes.sort((a, b) => compareAddr(a.addr, b.addr));
  markSyncStarting(nodes, readings);

  // Probe the addresses the caller named that are not members' own addresses.
  const memberAddrs = new Set(nodes.map((n) => n.addr));
  const probe = [...new Set([...(opts.probe ?? []).map(normalizeAddr), ...seeds])].filter((a) => !memberAddrs.has(a));
  if (probe.length) progress(`probing ${probe.length} node(s) outside the cluster`);
  const { aliases, outsiders } = await probeOutsiders(probe, reader, nodes);

  const compact = compactViews(nodes);
  return {
    kind: "shardform-snapshot",
    formatVersion: 2,
    nodes: compact,
    outsiders,
    aliases,
    disagreements: findDisagreements(compact),
    ...(leases ? { applies: leaseHolders(read) } : {}),
  };
}

/**
 * A replica whose link is down while its master lists it as waiting for the first sync to start
 * (state wait_bgsave: the master waits its repl-diskless-sync-delay, 5 s on stock servers, for more
 * replicas) is in its first sync, at the start, not a broken link.
 */
function markSyncStarting(nodes: ObservedNode[], readings: ReadonlyMap<string, NodeReading>): void {
  for (const n of nodes) {
    if (n.role !== "replica" || n.masterLinkUp !== false || n.syncing || !n.masterId) continue;
    const info = readings.get(n.masterId)?.info;
    if (!info) continue;
    const { host, port } = parseNodeAddr(n.addr);
    const listed = listedReplicas(info).filter((x) => x.port === port);
    const me = listed.find((x) => x.ip === host) ?? (listed.length === 1 ? listed[0] : undefined);
    if (me && (me.state === "wait_bgsave" || me.state === "send_bulk")) n.syncing = { readBytes: 0, totalBytes: 0 };
  }
}

/** A member an unreachable address names: by the hostname it announces, or by what the name resolves to. */
async function matchUnreachable(addr: NodeAddr, nodes: ObservedNode[]): Promise<Alias | null> {
  const { host, port } = parseNodeAddr(addr);
  if (isIP(host)) return null;
  const byHostname = nodes.find((n) => n.hostname === host && parseNodeAddr(n.addr).port === port);
  if (byHostname) return { addr, id: byHostname.id, how: "hostname" };
  let resolved: string[] = [];
  try {
    resolved = (await lookup(host, { all: true })).map((r) => formatNodeAddr({ host: r.address, port }));
  } catch {
    return null;
  }
  const hits = nodes.filter((n) => resolved.includes(n.addr));
  return hits.length === 1 ? { addr, id: hits[0]!.id, how: "resolved" } : null;
}

/** A member nobody could read: describe it as its peers see it. */
function unreachableNode(id: string, addr: NodeAddr, seen: NodeEntry | undefined, why: string): ObservedNode {
  return {
    id,
    addr,
    ...(seen?.hostname ? { hostname: seen.hostname } : {}),
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
