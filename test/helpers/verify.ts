/** The checks every apply test ends with. */
import { spawnSync } from "node:child_process";
import { expect } from "vitest";
import { observeCluster } from "../../src/observe/observe.js";
import { verifyTestKeys } from "../../src/testdata/populate.js";
import { countSlots } from "../../src/slots.js";
import type { ObservedCluster } from "../../src/observe/types.js";

/** Every member agrees on members and slot owners, no slot is open, 16384 slots covered, redis-cli finds nothing wrong. */
export async function expectHealthy(seed: string, members: number): Promise<ObservedCluster> {
  const o = await observeCluster({ seeds: [seed] });
  expect(o.disagreements).toEqual([]);
  expect(o.nodes).toHaveLength(members);
  expect(o.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
  expect(o.nodes.filter((n) => n.role === "master").reduce((s, n) => s + countSlots(n.slots), 0)).toBe(16384);
  const r = spawnSync("redis-cli", ["--cluster", "check", seed], { encoding: "utf8" });
  expect(r.stdout).not.toMatch(/\[ERR\]|\[WARNING\]/);
  expect(r.stdout).toContain("[OK] All 16384 slots covered.");
  return o;
}

export async function expectAllKeys(seed: string, keys: number): Promise<void> {
  const o = await observeCluster({ seeds: [seed] });
  const r = await verifyTestKeys(o, { keys });
  expect({ checked: r.checked, missing: r.missing.length, wrong: r.wrong.length }).toEqual({ checked: keys, missing: 0, wrong: 0 });
}
