/**
 * A live client for the latency bench: an ioredis Cluster client (it follows MOVED and ASK) sending
 * GET of test keys and SET of its own keys at a fixed rate, open loop (requests are sent on schedule
 * whether or not the earlier ones have answered), measuring each request from when it was sent.
 */
import { Cluster } from "ioredis";
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
