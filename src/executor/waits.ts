/**
 * How apply waits for the cluster: a check polled until it passes or the deadline (--wait-timeout)
 * passes, and the wait until every member agrees on roles and slot owners, telling a member that lags
 * behind a change directly (see nudge) once gossip has had its chance.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeClient } from "../redis/connect.js";
import type { NodeEntry } from "../redis/cluster-nodes.js";
import { ClusterChangedError, ClusterStateError } from "../errors.js";
import type { NodeAddr } from "../redis/node-key.js";
import { ipPort } from "../redis/resolve.js";
import type { NodeRef } from "../plan/types.js";
import { mapLimit } from "../util/limit.js";
import type { ClusterReads } from "./reads.js";

/** Thrown by a wait once apply stops at once (a second Ctrl-C, or its connections are closed). */
export class StopRequested extends Error {
  constructor() {
    super("stop requested");
  }
}

/** How long a member may lag behind a change before it is told directly (see nudge), and how often after. */
const NUDGE_GRACE_MS = 500;
const NUDGE_EVERY_MS = 2000;

export class Waits {
  private readonly reads: ClusterReads;
  private readonly conn: (addr: NodeAddr) => Promise<NodeClient>;
  private readonly stopped: () => boolean;
  private readonly timeoutMs: number;
  /** When a lag (see nudgeDue) was first found, or last acted on. */
  private readonly nudged = new Map<string, number>();

  constructor(reads: ClusterReads, conn: (addr: NodeAddr) => Promise<NodeClient>, stopped: () => boolean, timeoutMs: number) {
    this.reads = reads;
    this.conn = conn;
    this.stopped = stopped;
    this.timeoutMs = timeoutMs;
  }

  /** Polls `check` until it returns null (done) or the deadline passes; the last reason is in the error. */
  async waitUntil(what: string, check: () => Promise<string | null>, timeoutMs = this.timeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let reason: string | null = "not checked";
    let delay = 20;
    for (;;) {
      if (this.stopped()) throw new StopRequested();
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
    await this.greet(node, viewer);
  }

  /**
   * `node` greets `viewer` with CLUSTER MEET at once (no grace, unlike nudge): `viewer` processes the
   * header, with `node`'s configuration and current epoch. Best effort: errors are left to the caller's wait.
   */
  async greet(node: NodeEntry | NodeRef, viewer: Pick<NodeEntry, "addr" | "busPort">): Promise<void> {
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
        const r = await this.reads.readCluster();
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
      this.timeoutMs,
    );
    return down;
  }
}
