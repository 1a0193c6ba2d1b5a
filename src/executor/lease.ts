/**
 * The in-cluster lock: while an apply runs, it keeps a connection to every node it touches, named
 * shardform-apply:<host>:<pid>:<start>. On each node, the lease belongs to the oldest such connection
 * (the lowest client id, which Redis hands out in increasing order): an apply that finds an older one
 * on any node gives up, naming the holder. A lease ends with its process (the connections close), so
 * a crashed apply never leaves it behind; `shardform force-unlock` ends a hung holder's connections.
 * This works across machines, for every node that answers.
 *
 * While the apply runs, the lease is checked again before each unit of work (at most once a second; see
 * verify): a lease connection lost with its node (restarted) or to a missed deadline is opened again; one
 * that the node closed while it kept running was ended from outside (force-unlock), and the apply stops,
 * as it does when it finds another apply's older lease on a node.
 */
import { hostname } from "node:os";
import { AuthFailedError, LockedError, PermissionError } from "../errors.js";
import { NodeClient, type Access } from "../redis/connect.js";
import { parseClientList, leaseName, parseLeaseName } from "../redis/client-list.js";
import type { NodeAddr } from "../redis/node-key.js";
import { mapLimit } from "../util/limit.js";

const STARTED_MS = Date.now();
/** Nodes this process holds a lease on, with a count (re-entrant). */
/** One node's lease connection: its client id (what makes it older or younger than another), and since when it is held. */
interface Held {
  client: NodeClient;
  count: number;
  id?: number;
  since: number;
}
const holding = new Map<NodeAddr, Held>();
/** How long one node's lease check may take (a paused node is skipped, not waited for). */
const VERIFY_NODE_MS = 1000;
/** How often, at most, verify asks the nodes again. */
const VERIFY_EVERY_MS = 1000;
let keepAlive: NodeJS.Timeout | undefined;

export function ownLeaseName(): string {
  return leaseName({ host: hostname(), pid: process.pid, startedMs: STARTED_MS });
}

export class ClusterLease {
  private readonly addrs: NodeAddr[];
  /** Nodes that did not answer (no lease there). */
  readonly skipped: NodeAddr[];
  private readonly access: Access;
  private verified: { at: number; check: Promise<void> } | null = null;

  private constructor(addrs: NodeAddr[], skipped: NodeAddr[], access: Access) {
    this.addrs = addrs;
    this.skipped = skipped;
    this.access = access;
  }

  static async acquire(addrs: readonly NodeAddr[], access: Access): Promise<ClusterLease> {
    const name = ownLeaseName();
    const mine: NodeAddr[] = [];
    const skipped: NodeAddr[] = [];
    const lease = new ClusterLease(mine, skipped, access);
    try {
      await mapLimit([...new Set(addrs)], 32, async (addr) => {
        const h = holding.get(addr);
        if (h) {
          h.count++;
          mine.push(addr);
          return;
        }
        let client: NodeClient;
        try {
          client = await NodeClient.connect(addr, { access: { ...access, clientName: name } });
        } catch (err) {
          if (err instanceof PermissionError || err instanceof AuthFailedError) throw err;
          skipped.push(addr);
          return;
        }
        const held: Held = { client, count: 1, since: Date.now() };
        holding.set(addr, held);
        mine.push(addr);
        held.id = Number(await client.call("client", "id"));
        const older = await olderHolder(client, held.id, name);
        if (older) {
          throw new LockedError(
            `another apply is running on this cluster: pid ${older.pid} on ${older.host}, started ${older.since} (it holds the lease on ${addr}, connection ${older.addr}). ` +
              `Wait for it to finish; if that process is hung or gone, run \`shardform force-unlock --seed ${addr}\`.`,
          );
        }
      });
    } catch (err) {
      await lease.release();
      throw err;
    }
    if (!keepAlive) {
      // Keeps the named connections from being closed as idle (a server's `timeout` setting).
      keepAlive = setInterval(() => {
        for (const h of holding.values()) if (!h.client.broken) void h.client.call("ping").catch(() => {});
      }, 5000);
      keepAlive.unref();
    }
    return lease;
  }

  /**
   * Checks the lease again on every node it was taken on (at most once a second: a check younger than
   * that is reused). A connection that broke is opened again where the node answers; a node that does
   * not answer within a second is skipped (it is down or paused, and changes nothing meanwhile). Throws
   * LockedError when another apply holds an older lease connection on any node.
   */
  async verify(): Promise<void> {
    if (this.verified && Date.now() - this.verified.at < VERIFY_EVERY_MS) return this.verified.check;
    const check = this.verifyNow();
    this.verified = { at: Date.now(), check };
    return check;
  }

  private async verifyNow(): Promise<void> {
    const name = ownLeaseName();
    await mapLimit([...new Set(this.addrs)], 32, async (addr) => {
      const h = holding.get(addr);
      if (!h) return;
      try {
        if (h.client.broken) {
          const ended = h.client.closedByPeer;
          const client = await NodeClient.connect(addr, { access: { ...this.access, clientName: name }, connectTimeoutMs: VERIFY_NODE_MS });
          // Closed by the node while it kept running (it did not restart since the lease was taken): the
          // lease was ended from outside (force-unlock, CLIENT KILL). Taking it again would undo that.
          const uptimeMs = Number(/uptime_in_seconds:(\d+)/.exec(String(await client.callWithin(VERIFY_NODE_MS, "info", "server")))?.[1] ?? 0) * 1000;
          if (ended && uptimeMs > Date.now() - h.since) {
            // Whoever ended it may hold the lease now: named if so.
            const other = await olderHolder(client, Number.MAX_SAFE_INTEGER, name, VERIFY_NODE_MS);
            await client.close();
            if (other) throw takenOver(other, addr);
            throw new LockedError(
              `this apply's lease on ${addr} was ended from outside while it ran (\`shardform force-unlock\`, or CLIENT KILL), so it stops: it starts nothing new and finishes what it has in flight. ` +
                `If no other apply runs, the same command resumes it.`,
            );
          }
          h.client = client;
          h.since = Date.now();
          h.id = Number(await h.client.callWithin(VERIFY_NODE_MS, "client", "id"));
        }
        const older = await olderHolder(h.client, h.id ?? Number.MAX_SAFE_INTEGER, name, VERIFY_NODE_MS);
        if (older) throw takenOver(older, addr);
      } catch (err) {
        if (err instanceof LockedError || err instanceof PermissionError || err instanceof AuthFailedError) throw err;
        // down or paused: no other apply can take the lease there meanwhile without this one seeing it elsewhere
      }
    });
  }

  async release(): Promise<void> {
    await Promise.all(
      this.addrs.splice(0).map(async (addr) => {
        const h = holding.get(addr);
        if (!h) return;
        if (--h.count > 0) return;
        holding.delete(addr);
        await h.client.close();
      }),
    );
    if (holding.size === 0 && keepAlive) {
      clearInterval(keepAlive);
      keepAlive = undefined;
    }
  }
}

/** The oldest lease connection on this node that is older than `myId` and not this process's. */
async function olderHolder(client: NodeClient, myId: number, name: string, ms?: number): Promise<(ReturnType<typeof parseLeaseName> & { addr: string }) | null> {
  const list = String(ms === undefined ? await client.call("client", "list", "type", "normal") : await client.callWithin(ms, "client", "list", "type", "normal"));
  const older = parseClientList(list)
    .filter((e) => parseLeaseName(e.name) && e.id < myId && e.name !== name)
    .sort((a, b) => a.id - b.id)[0];
  return older ? { ...parseLeaseName(older.name)!, addr: older.addr } : null;
}

/** The error of an apply that finds, while it runs, another apply's lease on `addr`. */
function takenOver(other: NonNullable<Awaited<ReturnType<typeof olderHolder>>>, addr: NodeAddr): LockedError {
  return new LockedError(
    `another apply took the cluster lease while this one ran: pid ${other.pid} on ${other.host}, started ${other.since} (it holds the lease on ${addr}, connection ${other.addr}), ` +
      `so this apply stops: it starts nothing new and finishes what it has in flight. Its lease was ended from outside (\`shardform force-unlock\`) or lost. ` +
      `Once the other apply is done, plan again.`,
  );
}
