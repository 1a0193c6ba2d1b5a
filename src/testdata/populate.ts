/**
 * Deterministic test keys: written pipelined per master, masters in parallel, and read back to
 * verify. Each key goes to the master that owns its slot, so no write is redirected.
 */
import calculateSlot from "cluster-key-slot";
import { NodeClient, type Credentials } from "../redis/connect.js";
import { BulkWriter } from "../redis/bulk.js";
import type { ObservedCluster } from "../observe/types.js";
import { ClusterStateError } from "../errors.js";
import { SLOT_COUNT } from "../slots.js";

export interface PopulateOptions {
  keys: number;
  prefix?: string;
  valueSize?: number;
  batch?: number;
  credentials?: Credentials;
  onProgress?: (written: number) => void;
}

export function testKey(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(10, "0")}`;
}

/** The value of key i: derived from i, so a reader can verify it without a copy. */
export function testValue(i: number, size: number): string {
  const seed = `v${i}:`;
  return seed.repeat(Math.ceil(size / seed.length)).slice(0, size);
}

/** CRC16/XMODEM, the hash of Redis Cluster key slots, one byte at a time. */
const CRC16 = Array.from({ length: 256 }, (_, n) => {
  let crc = n << 8;
  for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});
const crcByte = (crc: number, byte: number): number => ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ byte) & 0xff]!;

/**
 * The slot of testKey(prefix, i), fast: the prefix is hashed once, then only the digits. A prefix
 * with a "{" may make a hash tag, so it goes through the general function.
 */
export function testKeySlot(prefix: string): (i: number) => number {
  if (prefix.includes("{")) return (i) => calculateSlot(testKey(prefix, i));
  let base = 0;
  for (const b of Buffer.from(prefix)) base = crcByte(base, b);
  return (i) => {
    const digits = String(i).padStart(10, "0");
    let crc = base;
    for (let k = 0; k < digits.length; k++) crc = crcByte(crc, digits.charCodeAt(k));
    return crc & (SLOT_COUNT - 1);
  };
}

export function slotOwners(o: ObservedCluster): string[] {
  const owners: string[] = new Array(SLOT_COUNT);
  for (const n of o.nodes) {
    if (n.role !== "master") continue;
    for (const [a, b] of n.slots) for (let s = a; s <= b; s++) owners[s] = n.addr;
  }
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (owners[s] === undefined) throw new ClusterStateError(`slot ${s} has no owner: the cluster does not cover all slots`);
  }
  return owners;
}

/** The numbers of the test keys, grouped by the address of the master that owns each key's slot. */
export function keysByMaster(o: ObservedCluster, keys: number, prefix: string): Map<string, number[]> {
  const owners = slotOwners(o);
  const perMaster = new Map<string, number[]>();
  const slotOf = testKeySlot(prefix);
  for (let i = 0; i < keys; i++) {
    const addr = owners[slotOf(i)]!;
    let list = perMaster.get(addr);
    if (!list) perMaster.set(addr, (list = []));
    list.push(i);
  }
  return perMaster;
}

/**
 * Writes the test keys in one pass: each key goes to the master that owns its slot, as raw RESP
 * on one connection per master (masters in parallel, as `redis-cli --pipe` would), `batch`
 * commands per write, with a bounded number of replies outstanding.
 */
export async function populate(o: ObservedCluster, opts: PopulateOptions): Promise<number> {
  const prefix = opts.prefix ?? "key:";
  const size = opts.valueSize ?? 16;
  const batch = opts.batch ?? 2000;
  const owners = slotOwners(o);
  const masters = [...new Set(owners)];
  const writers = new Map<string, BulkWriter>();
  const pending = new Map(masters.map((a) => [a, { text: "", count: 0 }]));
  let written = 0;
  const flush = async (addr: string): Promise<void> => {
    const p = pending.get(addr)!;
    if (p.count === 0) return;
    const { text, count } = p;
    p.text = "";
    p.count = 0;
    await writers.get(addr)!.send(text, count);
    written += count;
    opts.onProgress?.(written);
  };
  try {
    for (const w of await Promise.all(masters.map((a) => BulkWriter.open(a, opts.credentials)))) writers.set(w.addr, w);
    const slotOf = testKeySlot(prefix);
    // Keys and values are ASCII after the prefix: their byte lengths need no counting.
    const prefixBytes = Buffer.byteLength(prefix);
    const valueHead = `\r\n$${size}\r\n`;
    for (let i = 0; i < opts.keys; i++) {
      const key = testKey(prefix, i);
      const addr = owners[slotOf(i)]!;
      const p = pending.get(addr)!;
      p.text += `*3\r\n$3\r\nSET\r\n$${prefixBytes + key.length - prefix.length}\r\n${key}${valueHead}${testValue(i, size)}\r\n`;
      if (++p.count === batch) await flush(addr);
    }
    for (const a of masters) await flush(a);
    await Promise.all([...writers.values()].map((w) => w.finish()));
  } catch (err) {
    for (const w of writers.values()) w.destroy();
    throw err;
  }
  return written;
}

export interface VerifyResult {
  checked: number;
  missing: string[];
  wrong: string[];
}

/** Reads every test key back from the master that owns its slot and compares its value. */
export async function verifyTestKeys(o: ObservedCluster, opts: Omit<PopulateOptions, "onProgress">): Promise<VerifyResult> {
  const prefix = opts.prefix ?? "key:";
  const size = opts.valueSize ?? 16;
  const batch = opts.batch ?? 1000;
  const perMaster = keysByMaster(o, opts.keys, prefix);
  const result: VerifyResult = { checked: 0, missing: [], wrong: [] };
  await Promise.all(
    [...perMaster].map(async ([addr, ids]) => {
      const c = await NodeClient.connect(addr, { readOnly: true, ...(opts.credentials ? { credentials: opts.credentials } : {}) });
      try {
        for (let k = 0; k < ids.length; k += batch) {
          const chunk = ids.slice(k, k + batch);
          const res = await c.pipeline(chunk.map((i) => ["get", testKey(prefix, i)]));
          res.forEach(([err, value], j) => {
            const i = chunk[j]!;
            if (err || value === null) result.missing.push(testKey(prefix, i));
            else if (value !== testValue(i, size)) result.wrong.push(testKey(prefix, i));
          });
          result.checked += chunk.length;
        }
      } finally {
        await c.close();
      }
    }),
  );
  return result;
}
