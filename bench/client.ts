/**
 * A live client for the latency bench: an ioredis Cluster client (it follows MOVED and ASK) sending
 * GET of test keys and SET of its own keys at a fixed rate, open loop (requests are sent on schedule
 * whether or not the earlier ones have answered), measuring each request from when it was sent.
 */
import { Cluster, Redis } from "ioredis";
import { testKey } from "../src/testdata/populate.js";

export interface LatencyReport {
  requests: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  firstErrors: string[];
}

export async function liveClient(seed: string, ratePerSecond: number, keys: number): Promise<{ stop: () => Promise<LatencyReport> }> {
  const [host, port] = seed.split(":");
  const client = new Cluster([{ host: host!, port: Number(port) }], { scaleReads: "master", redisOptions: { protocol: 2 } });
  await client.ping();
  const latencies: number[] = [];
  const firstErrors: string[] = [];
  let errors = 0;
  let sent = 0;
  const inFlight = new Set<Promise<unknown>>();
  const started = performance.now();
  const tickMs = 1;
  const timer = setInterval(() => {
    // Requests due by now that were not sent yet: the loop keeps the rate even when a tick is late.
    const due = Math.floor(((performance.now() - started) / 1000) * ratePerSecond);
    for (; sent < due; sent++) {
      const at = performance.now();
      const i = sent;
      const p = (i % 2 === 0 ? client.get(testKey("key:", (i * 7919) % keys)) : client.set(`live:${i % 10000}`, String(i)))
        .then(() => void latencies.push(performance.now() - at))
        .catch((err: unknown) => {
          errors++;
          if (firstErrors.length < 5) firstErrors.push((err as Error).message);
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  }, tickMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inFlight);
      client.disconnect();
      const s = [...latencies].sort((a, b) => a - b);
      const q = (f: number): number => s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? 0;
      return { requests: sent, errors, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? 0, firstErrors };
    },
  };
}

/**
 * The longest single write a client waits for on one node, in a closed loop (one SET at a time, at
 * most one per millisecond so that it adds little load) to a
 * key of slot 0, which the bench's scale-out does not move (the first master keeps the low end of its
 * range). Valkey 9's server-side migration pauses every write on the source at each migration's end:
 * this shows how long, apart from what the live client's percentiles make of it.
 */
export async function writeStallProbe(addr: string): Promise<{ stop: () => Promise<number> }> {
  const [host, port] = addr.split(":");
  const c = new Redis({ host: host!, port: Number(port), protocol: 2, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  await c.connect();
  const key = "probe2964"; // slot 0
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = performance.now();
      await c.set(key, "x").catch(() => undefined);
      const took = performance.now() - at;
      max = Math.max(max, took);
      if (took < 1) await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      c.disconnect();
      return max;
    },
  };
}
