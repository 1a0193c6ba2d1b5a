/** The checks every apply test ends with. */
import { spawnSync } from "node:child_process";
import calculateSlot from "cluster-key-slot";
import { expect } from "vitest";
import { observeCluster } from "../../src/observe/observe.js";
import { verifyTestKeys } from "../../src/testdata/populate.js";
import { countSlots } from "../../src/slots.js";
import type { ObservedCluster } from "../../src/observe/types.js";
import { NodeClient, type Access } from "../../src/redis/connect.js";
import { runCli } from "./cli.js";

export interface CheckOptions {
  /** The server's own cli, for `--cluster check` (default redis-cli). */
  cli?: string;
  /** Extra arguments for it (TLS, auth). */
  cliArgs?: string[];
  access?: Access;
}

/**
 * Every member agrees on members and slot owners, no slot is open, no key sits in a slot its node does
 * not own, 16384 slots covered, no lease left behind by an apply of this process, and the server's own
 * `--cluster check` finds nothing wrong.
 */
export async function expectHealthy(seed: string, members: number, opts: CheckOptions = {}): Promise<ObservedCluster> {
  const o = await observeCluster({ seeds: [seed], leases: true, ...(opts.access ? { access: opts.access } : {}) });
  expect(o.disagreements).toEqual([]);
  // An apply run in this process (runCli, applyPlan) has returned: it holds no lease connection anywhere.
  expect((o.applies ?? []).filter((h) => h.pid === process.pid)).toEqual([]);
  expect(o.nodes).toHaveLength(members);
  expect(o.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
  expect(o.nodes.flatMap((n) => n.strayKeys ?? [])).toEqual([]);
  expect(o.nodes.filter((n) => n.role === "master").reduce((s, n) => s + countSlots(n.slots), 0)).toBe(16384);
  const r = spawnSync(opts.cli ?? "redis-cli", [...(opts.cliArgs ?? []), "--cluster", "check", seed], { encoding: "utf8" });
  expect(r.stdout).not.toMatch(/\[ERR\]|\[WARNING\]/);
  expect(r.stdout).toContain("[OK] All 16384 slots covered.");
  return o;
}

export async function expectAllKeys(seed: string, keys: number, opts: CheckOptions = {}): Promise<void> {
  const o = await observeCluster({ seeds: [seed], ...(opts.access ? { access: opts.access } : {}) });
  const r = await verifyTestKeys(o, { keys, ...(opts.access ? { access: opts.access } : {}) });
  const got = { checked: r.checked, missing: r.missing.length, wrong: r.wrong.length };
  if (got.missing > 0) Object.assign(got, { where: await whereAreKeys(o, r.missing.slice(0, 5), opts.access) });
  expect(got).toEqual({ checked: keys, missing: 0, wrong: 0 });
}

/** For a failing check: each key's slot, the slot's owner, and every node whose GETKEYSINSLOT lists the key. */
async function whereAreKeys(o: ObservedCluster, keys: string[], access?: Access): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) {
    const slot = calculateSlot(k);
    const owner = o.nodes.find((n) => n.role === "master" && n.slots.some(([p, q]) => p <= slot && slot <= q));
    const holders: string[] = [];
    for (const n of o.nodes) {
      const c = await NodeClient.connect(n.addr, access ? { access } : {});
      try {
        const inSlot = (await c.call("cluster", "getkeysinslot", slot, 100_000)) as string[];
        if (inSlot.includes(k)) holders.push(`${n.addr} (${n.role})`);
      } finally {
        await c.close();
      }
    }
    out.push(`${k}: slot ${slot}, owner ${owner?.addr ?? "none"}, on ${holders.join(", ") || "no node"}`);
  }
  return out;
}

/** The full checks: healthy, every key back with its value, and `plan` of the spec reports no changes. */
export async function fullChecks(seed: string, members: number, keys: number, spec: string, opts: CheckOptions & { planArgs?: string[]; env?: Record<string, string> } = {}): Promise<void> {
  await expectHealthy(seed, members, opts);
  await expectAllKeys(seed, keys, opts);
  const p = await runCli(["plan", spec, "--detailed-exitcode", ...(opts.planArgs ?? [])], opts.env ?? {});
  expect(p.stdout + p.stderr).toContain("No changes.");
  expect(p.code).toBe(0);
}
