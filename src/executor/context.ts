/**
 * What every step handler gets: a connection to each node (never a cluster client; a connection that
 * broke or missed a deadline is replaced), a shared read of every member's view (steps that wait at
 * the same time share the reads), waits with a deadline, progress events and the stop state.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { NodeClient, type Access } from "../redis/connect.js";
import { parseClusterNodes, parseInfo, type NodeEntry } from "../redis/cluster-nodes.js";
import { ClusterChangedError, ClusterStateError, NodeTimeoutError, NodeUnreachableError } from "../errors.js";
import type { NodeAddr } from "../redis/node-key.js";
import { ipPort } from "../redis/resolve.js";
import type { NodeRef } from "../plan/types.js";
import { mapLimit } from "../util/limit.js";
import { withRenames } from "../safety/rules.js";
import type { ProgressEvent } from "./progress.js";
import { ConnectionPool, KeyPacer, Serializer } from "./pool.js";
import { LatencyGovernor, MIGRATES_IN_FLIGHT, type Pace } from "./latency.js";

export interface ExecOptions {
  /** Keys per MIGRATE command. */
  pipeline: number;
  /** MIGRATE timeout in ms (grows for big keys, up to a quarter of cluster-node-timeout). */
  migrateTimeoutMs: number;
  /** How long any wait (for the cluster to agree, a replica to sync, a node to come back) may take. */
  waitTimeoutMs: number;
  /** Slots of one source->target pair moved together (their commands share pipelines). */
  window: number;
  /** Units of work at once: windows of slot moves, or batches of other steps. */
  parallelism: number;
  /** Keys moved per second at most, over all pairs; 0 = no limit. */
  maxKeysPerSecond: number;
  /** --max-latency-ms: the wait a PING may see on a source or target (99th percentile), steering the pace; 0 = none. */
  maxLatencyMs?: number;
  /** Slots of one server-side migration (CLUSTER MIGRATESLOTS); default: every ready slot of the pair. */
  atomicWindow?: number;
}

export const DEFAULT_EXEC_OPTIONS: ExecOptions = {
  pipeline: 100,
  migrateTimeoutMs: 10_000,
  waitTimeoutMs: 60_000,
  window: 256,
  parallelism: 10,
  maxKeysPerSecond: 0,
};

/**
 * none: run. soft (a first Ctrl-C, or another unit failed): start nothing new, let the units in flight
 * finish (a unit cut short can leave an open slot, or a node forgotten but not reset). hard: stop at once.
 */
export type StopState = "none" | "soft" | "hard";

export class StopRequested extends Error {
  constructor() {
    super("stop requested");
  }
}

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

/** How long a member may lag behind a change before it is told directly (see ExecCtx.nudge), and how often after. */
const NUDGE_GRACE_MS = 500;
const NUDGE_EVERY_MS = 2000;

export class ExecCtx {
  readonly access: Access;
  readonly options: ExecOptions;
  readonly emit: (e: ProgressEvent) => void;
  private readonly pool: ConnectionPool;
  private readonly serial = new Serializer();
  private readonly pacer: KeyPacer;
  /** Under --max-latency-ms: sets the pace of key moves from what a PING waits on their nodes. */
  readonly governor: LatencyGovernor | null;
  stop: StopState = "none";
  /** Addresses of members, tried in order when a step needs "any member". */
  readonly knownAddrs: NodeAddr[] = [];
  /** In-process tests: called at each failpoint (see failpoints.ts), to act on the cluster there before apply goes on. */
  failpointHook?: (name: string) => Promise<void>;
  /** Checks the in-cluster lease again (see ClusterLease.verify); the walk calls it before units start. */
  leaseCheck?: () => Promise<void>;
  /** Node ids changed by a HARD reset during this apply, old -> new (safety rule 7); see rename. */
  renames: Record<string, string> = {};
  /** Called by rename to record it in the checkpoint before anything else happens. */
  onRename?: (from: string, to: string) => void;
  /** Server-side slot migrations this plan started (from the checkpoint, and as they start); see onMigration. */
  migrations: Record<string, string> = {};
  /** Records a server-side slot migration in the checkpoint as it starts. */
  onMigration?: (name: string, what: string) => void;
  /** The smallest cluster-node-timeout of the masters, in ms (read at the start). */
  nodeTimeoutMs = 15_000;
  /** Node ids the plan's forget-node steps remove (a removed shard's nodes may be forgotten in the order the cluster's roles need). */
  planForgets: ReadonlySet<string> = new Set();
  /** For each master of the plan, the nodes the cluster may promote in its place (safety rule 3: see planReplicas). */
  replicas: ReadonlyMap<string, ReadonlySet<string>> = new Map();
  /** Notes already emitted (noteOnce). */
  private readonly noted = new Set<string>();
  private lastRead: { at: number; read: ClusterRead } | null = null;
  private reading: Promise<ClusterRead> | null = null;
  /** When a lag (see nudgeDue) was first found, or last acted on. */
  private readonly nudged = new Map<string, number>();

  constructor(access: Access, options: ExecOptions, emit: (e: ProgressEvent) => void) {
    this.access = access;
    this.options = options;
    this.emit = emit;
    this.pool = new ConnectionPool(access);
    this.pacer = new KeyPacer(options.maxKeysPerSecond);
    this.governor = options.maxLatencyMs
      ? new LatencyGovernor(options.maxLatencyMs, { keys: options.pipeline, inFlight: MIGRATES_IN_FLIGHT, rate: options.maxKeysPerSecond }, this.pacer)
      : null;
  }

  /**
   * A connection to exactly this node; a broken one is replaced. `lane` > 0 gives further connections
   * to the same node, for commands that may wait side by side (Valkey's SETSLOT waits for replicas).
   */
  async conn(addr: NodeAddr, lane = 0): Promise<NodeClient> {
    // Once apply has closed its connections, nothing may open new ones (a unit still retrying would keep the process alive).
    const c = await this.pool.conn(addr, lane);
    if (!c) throw new StopRequested();
    return c;
  }

  async closeAll(): Promise<void> {
    this.stop = "hard";
    await this.governor?.stop();
    await this.pool.closeAll();
  }

  /** Runs `fn` when no other call with the same key runs (in call order): e.g. one MIGRATE batch per source at a time. */
  oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.serial.run(key, fn);
  }

  /** Waits until `keys` more keys may move under --max-keys-per-second (shared by every pair). */
  pace(keys: number): Promise<void> {
    return this.pacer.pace(keys);
  }

  /** Under --max-latency-ms, how many keys per MIGRATE and MIGRATEs at a time the governor allows now; null: no budget. */
  burst(): Pace | null {
    return this.governor?.pace() ?? null;
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

  /**
   * The node `from` has the id `to` now (reset-node's CLUSTER RESET HARD): recorded in the checkpoint
   * first, then every step that runs from now on names it by `to` (see renamed).
   */
  rename(from: string, to: string): void {
    this.onRename?.(from, to);
    this.renames = { ...this.renames, [from]: to };
    this.replicas = new Map([...this.replicas].map(([m, rs]) => [this.renames[m] ?? m, new Set([...rs].map((r) => this.renames[r] ?? r))]));
  }

  /** `value` (a unit of steps, a plan) with the ids renamed so far (safety rule 7). */
  renamed<T>(value: T): T {
    return withRenames(value, this.renames);
  }

  /** Emits a note once per apply (the same change seen by many windows is told once). */
  noteOnce(message: string): void {
    if (this.noted.has(message)) return;
    this.noted.add(message);
    this.emit({ type: "note", message });
  }

  async info(addr: NodeAddr, section: string): Promise<Record<string, string>> {
    return parseInfo(await (await this.conn(addr)).callString("info", section));
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

  /** Polls `check` until it returns null (done) or the deadline passes; the last reason is in the error. */
  async waitUntil(what: string, check: () => Promise<string | null>, timeoutMs = this.options.waitTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let reason: string | null = "not checked";
    let delay = 20;
    for (;;) {
      if (this.stop === "hard") throw new StopRequested();
      try {
        reason = await check();
      } catch (err) {
        if (err instanceof ClusterChangedError) throw err;
        reason = (err as Error).message;
      }
      if (reason === null) return;
      if (Date.now() >= deadline) break;
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
    throw new ClusterStateError(
      `timed out after ${Math.round(timeoutMs / 1000)} s waiting until ${what}: ${reason}. ` +
        `The checkpoint is consistent: fix the cause and run the same apply again (--wait-timeout sets how long apply waits).`,
    );
  }

  /**
   * Whether a lag (named by `key`) has lasted long enough to act on directly: false the first time it
   * is seen and for NUDGE_GRACE_MS after (gossip usually wins), then true at most every NUDGE_EVERY_MS.
   */
  nudgeDue(key: string): boolean {
    const now = Date.now();
    const since = this.nudged.get(key);
    if (since === undefined) {
      this.nudged.set(key, now - NUDGE_EVERY_MS + NUDGE_GRACE_MS);
      return false;
    }
    if (now - since < NUDGE_EVERY_MS) return false;
    this.nudged.set(key, now);
    return true;
  }

  /**
   * Makes `viewer` learn `node`'s own configuration (its slots, its role, its master) now rather than
   * at the next ping between the two, which can be half a cluster-node-timeout away: `node` greets
   * `viewer` with CLUSTER MEET, and a node processes the header of a MEET from a node it knows like
   * that of a ping (the greeting's temporary handshake entry is dropped as soon as `viewer` answers).
   * Gossip is given NUDGE_GRACE_MS first; then a pair is nudged at most every NUDGE_EVERY_MS. Best
   * effort: errors are left to the wait that called it.
   */
  async nudge(node: NodeEntry | NodeRef, viewer: NodeEntry): Promise<void> {
    if (!this.nudgeDue(`${node.id} ${viewer.id}`)) return;
    try {
      const { ip, port } = await ipPort(viewer.addr);
      await (await this.conn(node.addr)).call("cluster", "meet", ip, port, viewer.busPort);
    } catch {
      // the wait goes on and reports what it waits for
    }
  }

  /**
   * Every reachable member agrees on every node's role and on masters' slots, and, when all slots are
   * assigned, reports cluster_state:ok. Returns the members that could not be read (they are not waited for).
   */
  async waitAgreement(): Promise<Map<string, string>> {
    let down = new Map<string, string>();
    await this.waitUntil(
      "every member agrees on roles and slot owners and serves them",
      async () => {
        const r = await this.readCluster();
        down = r.down;
        // A member that answers LOADING (a demoted master resyncing) is alive: its view must agree too.
        for (const [id, why] of r.down) if (/LOADING/.test(why)) return `${r.members.find((m) => m.id === id)?.addr ?? id.slice(0, 8)} is loading its data`;
        const selves = r.selves;
        const ranges = (e: NodeEntry): string => e.slots.map(([a, b]) => `${a}-${b}`).join(",");
        const member = new Map(r.members.map((m) => [m.id, m]));
        const lags: string[] = [];
        const pairs: [NodeEntry, NodeEntry][] = [];
        for (const [id, v] of r.views) {
          const viewer = selves.get(id)?.addr ?? id.slice(0, 8);
          for (const e of v) {
            const own = selves.get(e.id);
            if (!own || e.flags.includes("myself")) continue;
            const lag =
              e.role !== own.role || e.masterId !== own.masterId
                ? `${viewer} still sees ${own.addr} as ${e.role}`
                : own.role === "master" && ranges(e) !== ranges(own)
                  ? `${viewer} has not yet learnt the slots of ${own.addr}`
                  : null;
            if (!lag) continue;
            lags.push(lag);
            const [n, w] = [member.get(e.id), member.get(id)];
            if (n && w) pairs.push([n, w]);
          }
        }
        await mapLimit(pairs, 32, ([n, w]) => this.nudge(n, w));
        if (lags.length > 0) return lags[0]!;
        for (const [id, info] of r.info) {
          if (info["cluster_slots_assigned"] === "16384" && info["cluster_state"] !== "ok") return `${selves.get(id)?.addr ?? id} reports cluster_state:${info["cluster_state"]}`;
        }
        return null;
      },
      this.options.waitTimeoutMs,
    );
    return down;
  }
}
