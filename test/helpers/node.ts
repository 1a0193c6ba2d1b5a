/** Small helpers the test files share: a connection to one node for one job, and a seeded PRNG. */
import { NodeClient } from "../../src/redis/connect.js";

/** Runs `fn` with a connection to `addr`, closed afterwards. */
export async function withNode<T>(addr: string, fn: (c: NodeClient) => Promise<T>): Promise<T> {
  const c = await NodeClient.connect(addr);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
