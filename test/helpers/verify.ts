/** The checks every apply test ends with. */
import { spawnSync } from "node:child_process";
import { expect } from "vitest";
import { observeCluster } from "../../src/observe/observe.js";
import { verifyTestKeys } from "../../src/testdata/populate.js";
import { countSlots } from "../../src/slots.js";
import type { ObservedCluster } from "../../src/observe/types.js";
import type { Access } from "../../src/redis/connect.js";
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
  expect({ checked: r.checked, missing: r.missing.length, wrong: r.wrong.length }).toEqual({ checked: keys, missing: 0, wrong: 0 });
}

/** The full checks: healthy, every key back with its value, and `plan` of the spec reports no changes. */
export async function fullChecks(seed: string, members: number, keys: number, spec: string, opts: CheckOptions & { planArgs?: string[]; env?: Record<string, string> } = {}): Promise<void> {
  await expectHealthy(seed, members, opts);
  await expectAllKeys(seed, keys, opts);
  const p = await runCli(["plan", spec, "--detailed-exitcode", ...(opts.planArgs ?? [])], opts.env ?? {});
  expect(p.stdout + p.stderr).toContain("No changes.");
  expect(p.code).toBe(0);
}
