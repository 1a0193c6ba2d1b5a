/**
 * The in-cluster lock: while an apply runs, it keeps a connection to every node it touches, named
 * shardform-apply:<host>:<pid>:<start>. On each node, the lease belongs to the oldest such connection
 * (the lowest client id, which Redis hands out in increasing order): an apply that finds an older one
 * on any node gives up, naming the holder. A lease ends with its process (the connections close), so
 * a crashed apply never leaves it behind; `shardform force-unlock` ends a hung holder's connections.
 * This works across machines, for every node that answers.
 */
import { hostname } from "node:os";
import { AuthFailedError, LockedError, PermissionError } from "../errors.js";
import { NodeClient, type Access } from "../redis/connect.js";
import { parseClientList, leaseName, parseLeaseName } from "../redis/client-list.js";
import type { NodeAddr } from "../redis/node-key.js";
import { mapLimit } from "../util/limit.js";

const STARTED_MS = Date.now();
/** Nodes this process holds a lease on, with a count (re-entrant). */
const holding = new Map<NodeAddr, { client: NodeClient; count: number }>();
let keepAlive: NodeJS.Timeout | undefined;

export function ownLeaseName(): string {
  return leaseName({ host: hostname(), pid: process.pid, startedMs: STARTED_MS });
}

export class ClusterLease {
  private readonly addrs: NodeAddr[];
  /** Nodes that did not answer (no lease there). */
  readonly skipped: NodeAddr[];

  private constructor(addrs: NodeAddr[], skipped: NodeAddr[]) {
    this.addrs = addrs;
    this.skipped = skipped;
  }

  static async acquire(addrs: readonly NodeAddr[], access: Access): Promise<ClusterLease> {
    const name = ownLeaseName();
    const mine: NodeAddr[] = [];
    const skipped: NodeAddr[] = [];
    const lease = new ClusterLease(mine, skipped);
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
        holding.set(addr, { client, count: 1 });
        mine.push(addr);
        const myId = Number(await client.call("client", "id"));
        const holders = parseClientList(String(await client.call("client", "list", "type", "normal")))
          .filter((e) => parseLeaseName(e.name) && e.id < myId && e.name !== name)
          .sort((a, b) => a.id - b.id);
        const older = holders[0];
        if (older) {
          const h2 = parseLeaseName(older.name)!;
          throw new LockedError(
            `another apply is running on this cluster: pid ${h2.pid} on ${h2.host}, started ${h2.since} (it holds the lease on ${addr}, connection ${older.addr}). ` +
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
