/**
 * Writes deterministic test keys, pipelined per master, masters in parallel.
 * Keys are grouped by the master that owns their slot, so no write is redirected.
 */
import calculateSlot from "cluster-key-slot";
import { NodeClient, type Credentials } from "../redis/connect.js";
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
  for (let i = 0; i < keys; i++) {
    const addr = owners[calculateSlot(testKey(prefix, i))]!;
    let list = perMaster.get(addr);
    if (!list) perMaster.set(addr, (list = []));
    list.push(i);
  }
  return perMaster;
}

export async function populate(o: ObservedCluster, opts: PopulateOptions): Promise<number> {
  const prefix = opts.prefix ?? "key:";
  const size = opts.valueSize ?? 16;
  const batch = opts.batch ?? 1000;
  const perMaster = keysByMaster(o, opts.keys, prefix);
  let written = 0;
  await Promise.all(
    [...perMaster].map(async ([addr, ids]) => {
      const c = await NodeClient.connect(addr, opts.credentials ? { credentials: opts.credentials } : {});
      try {
        for (let k = 0; k < ids.length; k += batch) {
          const chunk = ids.slice(k, k + batch);
          const res = await c.pipeline(chunk.map((i) => ["set", testKey(prefix, i), testValue(i, size)]));
          const failed = res.find(([err]) => err);
          if (failed) throw new ClusterStateError(`writing test keys to ${addr} failed: ${failed[0]!.message}`);
          written += chunk.length;
          opts.onProgress?.(written);
        }
      } finally {
        await c.close();
      }
    }),
  );
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
