/**
 * What every step handler gets: a connection to each node (never a cluster client; a connection that
 * broke or missed a deadline is replaced: pool.ts), reads of the cluster (reads.ts: steps that wait at
 * the same time share them), waits with a deadline (waits.ts), the pace of key moves (pool.ts,
 * latency.ts), progress events and the stop state.
 */
import { NodeClient, type Access } from "../redis/connect.js";
import type { NodeAddr } from "../redis/node-key.js";
import { withRenames } from "../safety/rules.js";
import type { ProgressEvent } from "./progress.js";
import { ConnectionPool, KeyPacer, Serializer } from "./pool.js";
import { LatencyGovernor, MIGRATES_IN_FLIGHT, type Pace } from "./latency.js";
import { ClusterReads } from "./reads.js";
import { StopRequested, Waits } from "./waits.js";

export { StopRequested } from "./waits.js";
export type { ClusterRead } from "./reads.js";

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
  /** Set by the walk: a window (named by its first step) has drained, and its pair may start the next (Scheduler.release). */
  onWindowDrained?: (firstStepId: string) => void;
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
  /** Reads of one node's view, of a member that answers, of every member's view at once. */
  readonly reads: ClusterReads;
  /** Polled waits with the --wait-timeout deadline, and the wait until every member agrees. */
  readonly waits: Waits;

  constructor(access: Access, options: ExecOptions, emit: (e: ProgressEvent) => void) {
    this.access = access;
    this.options = options;
    this.emit = emit;
    this.pool = new ConnectionPool(access);
    this.pacer = new KeyPacer(options.maxKeysPerSecond);
    this.reads = new ClusterReads((addr) => this.conn(addr), this.knownAddrs);
    this.waits = new Waits(this.reads, (addr) => this.conn(addr), () => this.stop === "hard", options.waitTimeoutMs);
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

  /** The last config epoch nextConfigEpoch gave out. */
  private lastEpoch = 0;

  /** A config epoch for a node about to join (see meet's ownEpoch): above `above`, and above every one given out before. */
  nextConfigEpoch(above: number): number {
    this.lastEpoch = Math.max(this.lastEpoch, above) + 1;
    return this.lastEpoch;
  }

  /** Emits a note once per apply (the same change seen by many windows is told once). */
  noteOnce(message: string): void {
    if (this.noted.has(message)) return;
    this.noted.add(message);
    this.emit({ type: "note", message });
  }
}
