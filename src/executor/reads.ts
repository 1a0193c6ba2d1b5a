/**
 * What apply reads of the cluster while it runs: a node's own view (checked to be the node the plan
 * names), a member that answers, the member whose word on who the members are counts, and every
 * member's view at one moment (shared by the steps that ask within a few milliseconds of each other).
 */
import type { NodeClient } from "../redis/connect.js";
import { parseClusterNodes, parseInfo, type NodeEntry } from "../redis/cluster-nodes.js";
import { ClusterChangedError, ClusterStateError, NodeTimeoutError, NodeUnreachableError } from "../errors.js";
import type { NodeAddr } from "../redis/node-key.js";
import type { NodeRef } from "../plan/types.js";
import { mapLimit } from "../util/limit.js";

/** Every member's own CLUSTER NODES and CLUSTER INFO, read at one moment. */
export interface ClusterRead {
  /** Members as the anchor lists them (no handshake or noaddr entries). */
  members: NodeEntry[];
  views: Map<string, NodeEntry[]>;
  /** Each member's own line (the "myself" entry of its view), by id. */
  selves: Map<string, NodeEntry>;
  info: Map<string, Record<string, string>>;
  /** Members that could not be read, and why. */
  down: Map<string, string>;
}

const READ_TTL_MS = 40;
/** How long one member's CLUSTER NODES + INFO may take in readCluster before it counts as down. */
const MEMBER_READ_MS = 4000;

export class ClusterReads {
  private readonly conn: (addr: NodeAddr) => Promise<NodeClient>;
  /** Addresses of members, tried in order when a read needs "any member" (the executor's list, shared). */
  private readonly knownAddrs: NodeAddr[];
  private lastRead: { at: number; read: ClusterRead } | null = null;
  private reading: Promise<ClusterRead> | null = null;

  constructor(conn: (addr: NodeAddr) => Promise<NodeClient>, knownAddrs: NodeAddr[]) {
    this.conn = conn;
    this.knownAddrs = knownAddrs;
  }

  /** This node's own CLUSTER NODES (within `ms`, default the connection's deadline). */
  async view(addr: NodeAddr, ms?: number): Promise<NodeEntry[]> {
    const c = await this.conn(addr);
    return parseClusterNodes(String(ms === undefined ? await c.callString("cluster", "nodes") : await c.callWithin(ms, "cluster", "nodes")));
  }

  async self(addr: NodeAddr, ms?: number): Promise<NodeEntry> {
    const me = (await this.view(addr, ms)).find((e) => e.flags.includes("myself"));
    if (!me) throw new ClusterStateError(`${addr} did not list itself in CLUSTER NODES`);
    return me;
  }

  /**
   * The node at ref.addr, checked to still be the node the plan names: a node restarted with a new
   * id, or another node now at that address, is a changed cluster.
   */
  async selfOf(ref: NodeRef, ms?: number): Promise<NodeEntry> {
    const me = await this.self(ref.addr, ms);
    if (me.id !== ref.id) {
      throw new ClusterChangedError(
        `${ref.addr} now answers with node id ${me.id.slice(0, 8)}, not ${ref.id.slice(0, 8)} as in the plan: the node was replaced or reset. Check the cluster with \`shardform check\`, then plan again.`,
      );
    }
    return me;
  }

  /**
   * Like selfOf, but null when the node does not answer within `ms` (down, paused): the caller then
   * asks the other members who serves its data now.
   */
  async selfOrNull(ref: NodeRef, ms = 2000): Promise<NodeEntry | null> {
    try {
      return await this.selfOf(ref, ms);
    } catch (err) {
      if (err instanceof NodeTimeoutError || err instanceof NodeUnreachableError) return null;
      throw err;
    }
  }

  /** An INFO section of the node (within `ms`, default the connection's deadline). */
  async info(addr: NodeAddr, section: string, ms?: number): Promise<Record<string, string>> {
    const c = await this.conn(addr);
    return parseInfo(String(ms === undefined ? await c.callString("info", section) : await c.callWithin(ms, "info", section)));
  }

  /** The node's own CLUSTER INFO (its current epoch, its config epoch, ...), read now. */
  async clusterInfo(addr: NodeAddr): Promise<Record<string, string>> {
    return parseInfo(await (await this.conn(addr)).callString("cluster", "info"));
  }

  /** A reachable member's address. */
  async anchor(excludeId?: string): Promise<NodeAddr> {
    return (await this.anchorView(excludeId)).addr;
  }

  /** A reachable member's address, with the CLUSTER NODES that showed it answers. */
  private async anchorView(excludeId?: string): Promise<{ addr: NodeAddr; view: NodeEntry[] }> {
    for (const addr of this.knownAddrs) {
      try {
        const view = await this.view(addr);
        const me = view.find((e) => e.flags.includes("myself"));
        if (me && me.id !== excludeId && !me.flags.includes("handshake")) return { addr, view };
      } catch {
        // try the next one
      }
    }
    throw new ClusterStateError(`no member answers (tried ${this.knownAddrs.join(", ")})`);
  }

  /**
   * A member whose word on who the members are counts, with its CLUSTER NODES: a master that owns slots
   * in its own view. A replica may lag, a node being removed (reset: it knows only itself) knows nobody,
   * and a member just back with an old nodes.conf still lists nodes the others forgot. Falls back to
   * the anchor when no master owns slots (a cluster being created).
   */
  async authority(excludeId?: string): Promise<{ addr: NodeAddr; view: NodeEntry[] }> {
    const ownsSlots = (v: NodeEntry[]): boolean => {
      const me = v.find((e) => e.flags.includes("myself"));
      return me?.role === "master" && me.slots.length > 0 && me.id !== excludeId;
    };
    const { addr, view } = await this.anchorView(excludeId);
    if (ownsSlots(view)) return { addr, view };
    const masters = view.filter((e) => e.role === "master" && e.slots.length > 0 && e.id !== excludeId && !e.flags.includes("fail") && !e.flags.includes("handshake") && !e.flags.includes("myself"));
    for (const m of masters) {
      const v = await this.view(m.addr).catch(() => null);
      if (v && ownsSlots(v)) return { addr: m.addr, view: v };
    }
    return { addr, view };
  }

  /**
   * Every member's CLUSTER NODES and CLUSTER INFO, read in parallel. Callers that ask within a few
   * milliseconds of each other share one read, so steps that wait together cost one read per poll.
   */
  async readCluster(): Promise<ClusterRead> {
    if (this.lastRead && Date.now() - this.lastRead.at < READ_TTL_MS) return this.lastRead.read;
    if (this.reading) return this.reading;
    this.reading = (async () => {
      const { addr: anchor, view } = await this.authority();
      const members = view
        .filter((e) => !e.flags.includes("handshake") && !e.flags.includes("noaddr"))
        .map((e) => (e.flags.includes("myself") ? { ...e, addr: anchor } : e));
      const views = new Map<string, NodeEntry[]>();
      const info = new Map<string, Record<string, string>>();
      const down = new Map<string, string>();
      await mapLimit(members, 32, async (m) => {
        try {
          const c = await this.conn(m.addr);
          // A paused node must not hold every reader up for the default deadline.
          const res = await c.pipeline([["cluster", "nodes"], ["cluster", "info"]], MEMBER_READ_MS);
          const err = res[0]![0] ?? res[1]![0];
          if (err) throw err;
          views.set(m.id, parseClusterNodes(res[0]![1] as string));
          info.set(m.id, parseInfo(res[1]![1] as string));
        } catch (err) {
          down.set(m.id, (err as Error).message);
        }
      });
      const selves = new Map<string, NodeEntry>();
      for (const v of views.values()) {
        const me = v.find((e) => e.flags.includes("myself"));
        if (me) selves.set(me.id, me);
      }
      const read = { members, views, selves, info, down };
      this.lastRead = { at: Date.now(), read };
      return read;
    })().finally(() => (this.reading = null));
    return this.reading;
  }
}
