/**
 * What every step handler gets: a connection to each node (never a cluster client),
 * live views, waiting with a deadline, progress events and the stop flag.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { NodeClient, type Credentials } from "../redis/connect.js";
import { parseClusterNodes, parseInfo, type NodeEntry } from "../redis/cluster-nodes.js";
import { ClusterStateError } from "../errors.js";
import type { NodeAddr } from "../redis/node-key.js";
import type { Step } from "../plan/types.js";
import type { ProgressEvent } from "./progress.js";

export interface ExecOptions {
  /** Keys per MIGRATE command. */
  pipeline: number;
  /** MIGRATE timeout in ms (grows for big keys). */
  migrateTimeoutMs: number;
  /** How long to wait for the cluster to converge after a step. */
  convergeTimeoutMs: number;
  /** Consecutive migrate-slot steps (same source and target) whose control commands share pipelines; 1 = one slot at a time. */
  window: number;
  /** Source->target pairs whose slot moves run at the same time; 1 = one pair after another. */
  parallel: number;
}

export const DEFAULT_EXEC_OPTIONS: ExecOptions = { pipeline: 100, migrateTimeoutMs: 10_000, convergeTimeoutMs: 60_000, window: 256, parallel: 4 };

export class StopRequested extends Error {
  constructor() {
    super("stop requested");
  }
}

export class ExecCtx {
  readonly credentials: Credentials;
  readonly options: ExecOptions;
  readonly emit: (e: ProgressEvent) => void;
  private readonly pool = new Map<NodeAddr, Promise<NodeClient>>();
  /** Set by Ctrl-C: handlers stop at the next safe point. */
  stopRequested = false;
  /** The step being run, for error messages. */
  current?: Step;
  /** Addresses of members, tried in order when a step needs "any member". */
  readonly knownAddrs: NodeAddr[] = [];

  constructor(credentials: Credentials, options: ExecOptions, emit: (e: ProgressEvent) => void) {
    this.credentials = credentials;
    this.options = options;
    this.emit = emit;
  }

  /** A connection to exactly this node. */
  conn(addr: NodeAddr): Promise<NodeClient> {
    let c = this.pool.get(addr);
    if (!c) {
      c = NodeClient.connect(addr, { credentials: this.credentials, commandTimeoutMs: 60_000 });
      c.catch(() => this.pool.delete(addr));
      this.pool.set(addr, c);
    }
    return c;
  }

  /** Drops a cached connection (after a node restarted or an error broke it). */
  async drop(addr: NodeAddr): Promise<void> {
    const c = this.pool.get(addr);
    this.pool.delete(addr);
    if (c) await c.then((x) => x.close()).catch(() => {});
  }

  async closeAll(): Promise<void> {
    const all = [...this.pool.keys()];
    await Promise.all(all.map((a) => this.drop(a)));
  }

  /** A reachable member other than `excludeId`. */
  async anchor(excludeId?: string): Promise<NodeAddr> {
    for (const a of this.knownAddrs) {
      try {
        const me = await this.self(a);
        if (me.id !== excludeId) return a;
      } catch {
        // try the next one
      }
    }
    throw new ClusterStateError(`no member answers (tried ${this.knownAddrs.join(", ")})`);
  }

  checkStop(): void {
    if (this.stopRequested) throw new StopRequested();
  }

  /** This node's own CLUSTER NODES. */
  async view(addr: NodeAddr): Promise<NodeEntry[]> {
    return parseClusterNodes(await (await this.conn(addr)).callString("cluster", "nodes"));
  }

  async self(addr: NodeAddr): Promise<NodeEntry> {
    const me = (await this.view(addr)).find((e) => e.flags.includes("myself"));
    if (!me) throw new ClusterStateError(`${addr} did not list itself in CLUSTER NODES`);
    return me;
  }

  async clusterInfo(addr: NodeAddr): Promise<Record<string, string>> {
    return parseInfo(await (await this.conn(addr)).callString("cluster", "info"));
  }

  async info(addr: NodeAddr, section: string): Promise<Record<string, string>> {
    return parseInfo(await (await this.conn(addr)).callString("info", section));
  }

  /**
   * The members as `via` sees them (no handshake or noaddr entries), with `via` at its real address.
   */
  async members(via: NodeAddr): Promise<NodeEntry[]> {
    return (await this.view(via))
      .filter((e) => !e.flags.includes("handshake") && !e.flags.includes("noaddr"))
      .map((e) => (e.flags.includes("myself") ? { ...e, addr: via } : e));
  }

  /** Polls `check` until it returns null (done) or the deadline passes; the last reason is in the error. */
  async waitUntil(what: string, check: () => Promise<string | null>, timeoutMs = this.options.convergeTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let reason: string | null = "not checked";
    let delay = 20;
    while (Date.now() < deadline) {
      this.checkStop();
      try {
        reason = await check();
      } catch (err) {
        reason = (err as Error).message;
      }
      if (reason === null) return;
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
    throw new ClusterStateError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting until ${what}: ${reason}`);
  }

  /** Every member's view of every master's slots and every node's role matches that node's own account. */
  async waitAgreement(): Promise<void> {
    await this.waitUntil("every member agrees on roles and slot owners and serves them", async () => {
      const members = await this.members(await this.anchor());
      const selves = new Map<string, NodeEntry>();
      const views = new Map<string, NodeEntry[]>();
      for (const m of members) {
        const v = await this.view(m.addr);
        views.set(m.addr, v);
        const me = v.find((e) => e.flags.includes("myself"));
        if (me) selves.set(me.id, me);
      }
      const ranges = (e: NodeEntry): string => e.slots.map(([a, b]) => `${a}-${b}`).join(",");
      for (const [addr, v] of views) {
        for (const e of v) {
          const own = selves.get(e.id);
          if (!own || e.flags.includes("myself")) continue;
          if (e.role !== own.role || e.masterId !== own.masterId) return `${addr} still sees ${own.addr} as ${e.role}`;
          if (own.role === "master" && ranges(e) !== ranges(own)) return `${addr} has not yet learnt the slots of ${own.addr}`;
        }
      }
      // A cluster that assigns every slot must also serve them: cluster_state:ok everywhere.
      for (const m of members) {
        const info = await this.clusterInfo(m.addr);
        if (info["cluster_slots_assigned"] === "16384" && info["cluster_state"] !== "ok") return `${m.addr} reports cluster_state:${info["cluster_state"]}`;
      }
      return null;
    });
  }

  /**
   * Every member lists every other with a connected link and the same set of ids;
   * with `requireOk`, every member also reports cluster_state:ok.
   */
  async waitConverged(anyMember: NodeAddr, requireOk: boolean, mustInclude?: string): Promise<void> {
    await this.waitUntil(requireOk ? "every member knows every other and reports cluster_state:ok" : "every member knows every other", async () => {
      const members = await this.members(anyMember);
      if (mustInclude && !members.some((m) => m.id === mustInclude)) return `${anyMember} does not know ${mustInclude.slice(0, 8)} yet`;
      const ids = members.map((m) => m.id).sort().join(",");
      for (const m of members) {
        const v = (await this.view(m.addr)).filter((e) => !e.flags.includes("handshake"));
        const vids = v.map((e) => e.id).sort().join(",");
        if (vids !== ids) return `${m.addr} knows ${v.length} node(s), ${anyMember} knows ${members.length}`;
        const bad = v.find((e) => !e.flags.includes("myself") && (!e.linkConnected || e.flags.includes("fail") || e.flags.includes("pfail")));
        if (bad) return `${m.addr} has no healthy link to ${bad.addr}`;
        if (requireOk) {
          const state = (await this.clusterInfo(m.addr))["cluster_state"];
          if (state !== "ok") return `${m.addr} reports cluster_state:${state}`;
        }
      }
      return null;
    });
  }
}
