/**
 * The skewed data set of the balance benchmark, the same bytes every run (a seeded PRNG):
 *  - `keys` test keys (16-byte values) over every slot;
 *  - heavy-tailed random-byte values (Pareto sizes, 100 B to 256 KiB) under random names;
 *  - hash tags on the first master: 40 tags of 100 keys of 4 KiB;
 *  - one tag of 100,000 tiny keys on the second master.
 * Slot counts stay equal, so `redis-cli --cluster rebalance` finds nothing to do.
 */
import calculateSlot from "cluster-key-slot";
import type { ObservedCluster } from "../src/observe/types.js";
import { NodeClient } from "../src/redis/connect.js";
import { expandRanges } from "../src/slots.js";
import { rng } from "../src/testdata/random.js";


export interface SkewedSummary {
  keys: number;
  bytes: number;
}

/** Writes the skewed keys (not the test keys) into the cluster, pipelined per master. */
export async function writeSkewed(o: ObservedCluster, opts: { heavyKeys?: number; seed?: number } = {}): Promise<SkewedSummary> {
  const r = rng(opts.seed ?? 42);
  const masters = o.nodes.filter((n) => n.role === "master" && n.slots.length > 0).sort((a, b) => a.addr.localeCompare(b.addr));
  const owner = new Map<number, string>();
  for (const m of masters) for (const s of expandRanges(m.slots)) owner.set(s, m.addr);
  const batches = new Map<string, (string | Buffer)[][]>(masters.map((m) => [m.addr, []]));
  let keys = 0;
  let bytes = 0;
  const put = (key: string, value: Buffer): void => {
    batches.get(owner.get(calculateSlot(key))!)!.push(["set", key, value]);
    keys++;
    bytes += value.length;
  };
  const random = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE((r() * 0x100000000) >>> 0, i);
    for (; i < n; i++) b[i] = (r() * 256) | 0;
    return b;
  };
  for (let i = 0; i < (opts.heavyKeys ?? 20_000); i++) put(`heavy:${i}`, random(Math.min(256 << 10, Math.max(100, Math.floor(100 / Math.pow(1 - r(), 1 / 1.1))))));
  const inRange = (m: (typeof masters)[number], count: number, prefix: string): string[] => {
    const out: string[] = [];
    for (let i = 0; out.length < count; i++) if (owner.get(calculateSlot(`${prefix}${i}`)) === m.addr) out.push(`${prefix}${i}`);
    return out;
  };
  for (const tag of inRange(masters[0]!, 40, "tag")) for (let k = 0; k < 100; k++) put(`{${tag}}:${k}`, random(4096));
  const [tiny] = inRange(masters[1]!, 1, "tiny");
  for (let k = 0; k < 100_000; k++) put(`{${tiny}}:${k}`, Buffer.from("1"));
  await Promise.all(
    [...batches].map(async ([addr, cmds]) => {
      const c = await NodeClient.connect(addr);
      try {
        for (let i = 0; i < cmds.length; i += 2000) {
          const res = await c.pipelineBuffer(cmds.slice(i, i + 2000), 120_000);
          const err = res.find(([e]) => e)?.[0];
          if (err) throw err;
        }
      } finally {
        await c.close();
      }
    }),
  );
  return { keys, bytes };
}
