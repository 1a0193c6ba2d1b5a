/**
 * Live clients for the chaos tier: an ioredis Cluster (as an application would use it) writes all the
 * time, and every acknowledged write is recorded, so that the end of a round can tell which of them the
 * cluster no longer has:
 *  - SET of unique keys (chaos:s:<n>, value v<n>);
 *  - INCR of 1000 counters (chaos:c:<i>): the acknowledged increments are a lower bound of each value
 *    (an increment that failed on the client may still have been applied);
 *  - RPUSH of unique ids to 200 lists (chaos:l:<i>).
 * A write that errors is not acknowledged, and is not counted either way.
 */
import { Cluster } from "ioredis";
import { setTimeout as sleep } from "node:timers/promises";

const COUNTERS = 1000;
const LISTS = 200;

/** Acknowledged writes missing now: the SETs and RPUSHes by their sequence number, the INCRs as a count. */
export interface Losses {
  set: Set<number>;
  /** Sum over the counters of (acknowledged increments - value), where positive. An increment that failed
   * on the client may still have been applied (even later), so this is a lower bound. Per counter it is
   * the largest such shortfall seen so far: an increment in flight when a round is measured (applied,
   * not yet acknowledged) hides a shortfall for that round only, and the loss must not then be counted
   * again, against a later round, when it shows once more. */
  incr: number;
  rpush: Set<number>;
}

export class Traffic {
  private readonly client: Cluster;
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;
  /** SET keys acknowledged (their value is derived from the key). */
  private readonly setAcked: number[] = [];
  private readonly incrAcked = new Array<number>(COUNTERS).fill(0);
  /** Per counter, the largest shortfall (acknowledged increments - value) seen so far (see Losses.incr). */
  private readonly incrShort = new Array<number>(COUNTERS).fill(0);
  private readonly pushAcked: number[][] = Array.from({ length: LISTS }, () => []);
  acked = 0;
  errors = 0;

  constructor(seed: { host: string; port: number }) {
    this.client = new Cluster([seed], {
      scaleReads: "master",
      maxRedirections: 64,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 200,
      slotsRefreshTimeout: 2000,
      clusterRetryStrategy: () => 300,
      // No commandTimeout: ioredis's Cluster leaves its own commands' timeouts unhandled. A command to a
      // paused node waits for it (or for the failover's MOVED), as an application's would.
      redisOptions: { connectTimeout: 2000, maxRetriesPerRequest: 5 },
    });
    this.client.on("error", () => {});
  }

  /** `workers` loops, each one write at a time with a short pause (a steady few hundred writes a second). */
  start(workers = 4, pauseMs = 6): void {
    this.running = true;
    this.loops = Array.from({ length: workers }, async () => {
      while (this.running) {
        const n = this.seq++;
        try {
          switch (n % 3) {
            case 0:
              await this.client.set(`chaos:s:${n}`, `v${n}`);
              this.setAcked.push(n);
              break;
            case 1:
              await this.client.incr(`chaos:c:${n % COUNTERS}`);
              this.incrAcked[n % COUNTERS]!++;
              break;
            default:
              await this.client.rpush(`chaos:l:${n % LISTS}`, String(n));
              this.pushAcked[n % LISTS]!.push(n);
          }
          this.acked++;
        } catch {
          this.errors++;
        }
        await sleep(pauseMs);
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Acknowledged writes the cluster does not have now (every one acknowledged so far is read back). */
  async losses(): Promise<Losses> {
    // A snapshot: writes acknowledged after it are judged at the next call.
    const sets = [...this.setAcked];
    const incr = [...this.incrAcked];
    const pushed = this.pushAcked.map((l) => l.length);
    const out: Losses = { set: new Set(), incr: 0, rpush: new Set() };
    for (let k = 0; k < sets.length; k += 2000) {
      const chunk = sets.slice(k, k + 2000);
      const values = await Promise.all(chunk.map((n) => this.read(() => this.client.get(`chaos:s:${n}`))));
      values.forEach((v, j) => {
        if (v !== `v${chunk[j]}`) out.set.add(chunk[j]!);
      });
    }
    const counters = await Promise.all(incr.map((_, i) => this.read(() => this.client.get(`chaos:c:${i}`))));
    counters.forEach((v, i) => {
      this.incrShort[i] = Math.max(this.incrShort[i]!, incr[i]! - Number(v ?? 0));
      out.incr += this.incrShort[i]!;
    });
    const lists = await Promise.all(pushed.map((_, i) => this.read(() => this.client.lrange(`chaos:l:${i}`, 0, -1))));
    lists.forEach((l, i) => {
      const have = new Set(l);
      for (const id of this.pushAcked[i]!.slice(0, pushed[i])) if (!have.has(String(id))) out.rpush.add(id);
    });
    return out;
  }

  /** A read that retries while the cluster settles (a read error is not a lost write). */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 20) throw err;
        await sleep(250);
      }
    }
  }

  disconnect(): void {
    this.client.disconnect();
  }
}
