/**
 * The parts of ExecCtx that do not know about the cluster: one connection per node (and lane), calls
 * run one at a time per key, and the shared key budget of --max-keys-per-second.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { NodeClient, type Access } from "../redis/connect.js";
import type { NodeAddr } from "../redis/node-key.js";

/** One connection to exactly each node (never a cluster client); a broken one is replaced; once closed, the pool stays closed. */
export class ConnectionPool {
  private readonly pool = new Map<string, Promise<NodeClient>>();
  private readonly access: Access;
  closed = false;

  constructor(access: Access) {
    this.access = access;
  }

  /**
   * A connection to `addr`; `lane` > 0 gives further connections to the same node, for commands that
   * may wait side by side (Valkey's SETSLOT waits for replicas). Null once the pool is closed.
   */
  async conn(addr: NodeAddr, lane = 0): Promise<NodeClient | null> {
    if (this.closed) return null;
    const key = lane === 0 ? addr : `${addr}#${lane}`;
    const cached = this.pool.get(key);
    if (cached) {
      const c = await cached.catch(() => null);
      if (c && !c.broken) return c;
      if (this.pool.get(key) === cached) this.pool.delete(key);
    }
    let p = this.pool.get(key);
    if (!p) {
      p = NodeClient.connect(addr, { access: this.access });
      p.catch(() => {
        if (this.pool.get(key) === p) this.pool.delete(key);
      });
      this.pool.set(key, p);
    }
    return p;
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.pool.values()];
    this.pool.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
  }
}

/** Runs calls with the same key one after the other, in call order (e.g. one MIGRATE batch per source at a time). */
export class Serializer {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const gate = new Promise<void>((r) => (done = r));
    const mine = before.then(() => gate);
    this.tails.set(key, mine);
    await before;
    try {
      return await fn();
    } finally {
      done();
      if (this.tails.get(key) === mine) this.tails.delete(key);
    }
  }
}

/** The key budget of --max-keys-per-second, shared by every pair: each batch waits for its turn. */
export class KeyPacer {
  private next = 0;
  private limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** A new limit (keys per second; 0: none) from now on (the --max-latency-ms governor sets it). */
  setLimit(limit: number): void {
    this.limit = limit;
  }

  async pace(keys: number): Promise<void> {
    if (!(this.limit > 0)) return;
    const now = Date.now();
    const start = Math.max(now, this.next);
    this.next = start + (keys * 1000) / this.limit;
    if (start > now) await sleep(start - now);
  }
}
