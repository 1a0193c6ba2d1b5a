/**
 * Deterministic test keys: written pipelined per master, masters in parallel, and read back to
 * verify. Each key goes to the master that owns its slot, so no write is redirected.
 */
import calculateSlot from "cluster-key-slot";
import { NodeClient, type Access } from "../redis/connect.js";
import { BulkWriter, resp } from "../redis/bulk.js";
import type { ObservedCluster } from "../observe/types.js";
import { ClusterStateError, InputError } from "../errors.js";
import { SLOT_COUNT } from "../slots.js";

export interface PopulateOptions {
  keys: number;
  prefix?: string;
  valueSize?: number;
  batch?: number;
  /** The database the keys go to and are read from (default 0; others exist on Valkey 9 with cluster-databases > 1). */
  db?: number;
  access?: Access;
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
  // Keys are asked for in order: the hash of the first eight digits is kept for the next 100 numbers.
  let lastHundred = -1;
  let crcHundred = 0;
  const general = (i: number): number => {
    const digits = String(i).padStart(10, "0");
    let crc = base;
    for (let k = 0; k < digits.length; k++) crc = crcByte(crc, digits.charCodeAt(k));
    return crc & (SLOT_COUNT - 1);
  };
  return (i) => {
    if (i >= MAX_TEST_KEYS) return general(i);
    const hundred = Math.floor(i / 100);
    if (hundred !== lastHundred) {
      let crc = base;
      for (let div = 10_000_000; div >= 1; div /= 10) crc = crcByte(crc, 48 + (Math.floor(hundred / div) % 10));
      lastHundred = hundred;
      crcHundred = crc;
    }
    const r = i - hundred * 100;
    const tens = Math.floor(r / 10);
    return crcByte(crcByte(crcHundred, 48 + tens), 48 + r - tens * 10) & (SLOT_COUNT - 1);
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

/** The most test keys there can be: their numbers have ten digits. */
export const MAX_TEST_KEYS = 10_000_000_000;

/**
 * Writes testKey(prefix, i) and testValue(i, size) as two RESP bulk strings straight into a buffer,
 * for an MSET of several keys: a template of bytes in which only the digits change. Needs
 * i < MAX_TEST_KEYS.
 */
export class TestKeyEncoder {
  readonly bytes: number;
  private readonly size: number;
  private readonly template: Buffer;
  private readonly digitsAt: number;
  private readonly valueAt: number;

  constructor(prefix: string, size: number) {
    const pfx = Buffer.from(prefix);
    const head = Buffer.from(`$${pfx.length + 10}\r\n`);
    const mid = Buffer.from(`\r\n$${size}\r\n`);
    this.size = size;
    this.template = Buffer.concat([head, pfx, Buffer.alloc(10, "0"), mid, Buffer.alloc(size), Buffer.from("\r\n")]);
    this.bytes = this.template.length;
    this.digitsAt = head.length + pfx.length;
    this.valueAt = this.digitsAt + 10 + mid.length;
  }

  /** Writes key i and its value at out[at .. at + bytes). */
  encode(i: number, out: Buffer, at: number): void {
    this.template.copy(out, at);
    const d = at + this.digitsAt;
    for (let k = 9, n = i; k >= 0; k--, n = Math.floor(n / 10)) out[d + k] = 48 + (n % 10);
    // The value repeats "v<i>:" (i without its leading zeros) over `size` bytes.
    let first = d;
    while (first < d + 9 && out[first] === 48) first++;
    const seedLen = d + 10 - first + 2;
    const v = at + this.valueAt;
    for (let k = 0, p = 0; k < this.size; k++, p = p + 1 === seedLen ? 0 : p + 1) {
      out[v + k] = p === 0 ? 118 : p === seedLen - 1 ? 58 : out[first + p - 1]!;
    }
  }
}

/** Keys per MSET: the keys of one slot (its owner takes them in one command), up to this many. */
const KEYS_PER_MSET = 64;

/**
 * Writes the test keys in one pass: each key goes to the master that owns its slot, as raw RESP
 * on one connection per master (masters in parallel, as `redis-cli --pipe` would), with a bounded
 * number of replies outstanding. Keys of one slot go together, up to KEYS_PER_MSET in one MSET
 * (a cluster takes several keys in one command when they share a slot): the server parses and
 * dispatches one command for them instead of one each, which was most of its time.
 */
export async function populate(o: ObservedCluster, opts: PopulateOptions): Promise<number> {
  const prefix = opts.prefix ?? "key:";
  const size = opts.valueSize ?? 16;
  const batch = opts.batch ?? 2000;
  if (opts.keys > MAX_TEST_KEYS) throw new InputError(`at most ${MAX_TEST_KEYS} test keys can be written, not ${opts.keys}`);
  const owners = slotOwners(o);
  const masters = [...new Set(owners)];
  const pair = new TestKeyEncoder(prefix, size);
  const slotOf = testKeySlot(prefix);
  const writers = new Map<string, BulkWriter>();
  const msetHead = (n: number): Buffer => Buffer.from(`*${1 + 2 * n}\r\n$4\r\nMSET\r\n`);
  const fullHead = msetHead(KEYS_PER_MSET);
  const chunkBytes = Math.max(batch, KEYS_PER_MSET) * pair.bytes + Math.ceil(batch / KEYS_PER_MSET + 1) * fullHead.length;
  const chunk = (): { buf: Buffer; used: number; commands: number; keys: number } => ({ buf: Buffer.allocUnsafe(chunkBytes), used: 0, commands: 0, keys: 0 });
  const pending = new Map(masters.map((a) => [a, chunk()]));
  /** The keys of each slot not written yet (fewer than KEYS_PER_MSET). */
  const bySlot: number[][] = Array.from({ length: SLOT_COUNT }, () => []);
  let written = 0;
  const flush = async (addr: string): Promise<void> => {
    const p = pending.get(addr)!;
    if (p.commands === 0) return;
    pending.set(addr, chunk()); // the socket keeps the old buffer until it is sent
    await writers.get(addr)!.send(p.buf.subarray(0, p.used), p.commands);
    written += p.keys;
    opts.onProgress?.(written);
  };
  /** One MSET of `ids` (keys of one slot) to the slot's owner. */
  const mset = async (slot: number, ids: number[]): Promise<void> => {
    const addr = owners[slot]!;
    let p = pending.get(addr)!;
    const head = ids.length === KEYS_PER_MSET ? fullHead : msetHead(ids.length);
    if (p.used + head.length + ids.length * pair.bytes > p.buf.length) {
      await flush(addr);
      p = pending.get(addr)!;
    }
    head.copy(p.buf, p.used);
    p.used += head.length;
    for (const i of ids) {
      pair.encode(i, p.buf, p.used);
      p.used += pair.bytes;
    }
    p.commands++;
    p.keys += ids.length;
    if (p.keys >= batch) await flush(addr);
  };
  try {
    for (const w of await Promise.all(masters.map((a) => BulkWriter.open(a, opts.access)))) writers.set(w.addr, w);
    if (opts.db) await Promise.all([...writers.values()].map((w) => w.send(resp(["SELECT", String(opts.db)]), 1)));
    for (let i = 0; i < opts.keys; i++) {
      const slot = slotOf(i);
      const ids = bySlot[slot]!;
      ids.push(i);
      if (ids.length === KEYS_PER_MSET) {
        bySlot[slot] = [];
        await mset(slot, ids);
      }
    }
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (bySlot[slot]!.length > 0) await mset(slot, bySlot[slot]!);
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

/**
 * Reads every test key back from the master that owns its slot and compares its value, following
 * redirections as a cluster client does: MOVED to the node named, ASK with ASKING (a slot being moved).
 */
export async function verifyTestKeys(o: ObservedCluster, opts: Omit<PopulateOptions, "onProgress">): Promise<VerifyResult> {
  const prefix = opts.prefix ?? "key:";
  const size = opts.valueSize ?? 16;
  const batch = opts.batch ?? 1000;
  const perMaster = keysByMaster(o, opts.keys, prefix);
  const result: VerifyResult = { checked: 0, missing: [], wrong: [] };
  const conns = new Map<string, Promise<NodeClient>>();
  const conn = (addr: string): Promise<NodeClient> => {
    let c = conns.get(addr);
    if (!c) {
      c = NodeClient.connect(addr, { readOnly: true, ...(opts.access ? { access: opts.access } : {}) });
      if (opts.db) c = c.then(async (x) => (await x.call("select", opts.db!), x));
      conns.set(addr, c);
    }
    return c;
  };
  const judge = (i: number, value: unknown): void => {
    if (value === null || value === undefined) result.missing.push(testKey(prefix, i));
    else if (value !== testValue(i, size)) result.wrong.push(testKey(prefix, i));
  };
  /** Reads keys at `addr` (with ASKING before each when `asking`), following up to 5 redirections. */
  const readAt = async (addr: string, ids: number[], asking: boolean, hops: number): Promise<void> => {
    const c = await conn(addr);
    for (let k = 0; k < ids.length; k += batch) {
      const chunk = ids.slice(k, k + batch);
      const cmds = chunk.flatMap((i) => (asking ? [["asking"], ["get", testKey(prefix, i)]] : [["get", testKey(prefix, i)]]));
      const res = await c.pipeline(cmds);
      const replies = asking ? res.filter((_, j) => j % 2 === 1) : res;
      const redirect = new Map<string, { ask: boolean; ids: number[] }>();
      replies.forEach(([err, value], j) => {
        const i = chunk[j]!;
        const m = err ? /^(MOVED|ASK) \d+ (\S+)/.exec(err.message) : null;
        if (m && hops < 5) {
          const key = `${m[1]} ${m[2]}`;
          const r = redirect.get(key) ?? { ask: m[1] === "ASK", ids: [] };
          r.ids.push(i);
          redirect.set(key, r);
          return;
        }
        if (err) result.missing.push(testKey(prefix, i));
        else judge(i, value);
      });
      for (const [key, r] of redirect) await readAt(key.split(" ")[1]!, r.ids, r.ask, hops + 1);
      if (hops === 0) result.checked += chunk.length;
    }
  };
  try {
    await Promise.all([...perMaster].map(([addr, ids]) => readAt(addr, ids, false, 0)));
  } finally {
    await Promise.all([...conns.values()].map((p) => p.then((c) => c.close()).catch(() => {})));
  }
  return result;
}
