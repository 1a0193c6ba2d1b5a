/**
 * Keys left on a master that no longer owns their slot (safety rule 9), on a real cluster: a slot is
 * handed from one master to another while the first still holds its keys, as a move that was not
 * drained leaves it (an older tool, or a shard failed over mid-move). `plan` refuses them without a plan
 * that explains them; with the plan that moved the slot (--history, or the spec's last plan, read by
 * `apply SPEC`), a move-stray-keys step takes them to the owner, keeping the owner's copy of a key both
 * hold. Each case ends with the full checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { createCluster, startNodes, waitConsistent, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { runChild } from "../helpers/child.js";
import { fullChecks } from "../helpers/verify.js";
import { withNode } from "../helpers/node.js";

// Ports 20900-20902 (bus 30900-30902): this file's own range.
const BASE = 20900;
const KEYS = 20_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
const all = [a(0), a(1), a(2)];
const ids = new Map<string, string>();


function specFile(name: string, masters: number[]): string {
  const f = join(work, `${name}.yaml`);
  writeFileSync(f, [`cluster:`, `  seeds: ["${a(masters[0]!)}"]`, `shards:`, ...masters.map((m) => `  - master: ${a(m)}`)].join("\n") + "\n");
  return f;
}

/** A key name of `slot` (not a test key). */
async function keyOfSlot(slot: number): Promise<string> {
  return withNode(a(0), async (c) => {
    const names = Array.from({ length: 40_000 }, (_, i) => `extra:{${i}}`);
    const res = await c.pipeline(names.map((n) => ["cluster", "keyslot", n]));
    const k = res.findIndex(([, s]) => Number(s) === slot);
    if (k < 0) throw new Error(`no key name found for slot ${slot}`);
    return names[k]!;
  });
}

interface Stray {
  slot: number;
  target: string;
  extra: string;
  keys: number;
}

/**
 * Hands `slot` from a(0) to `target` the way an undrained move ends: a(0) keeps its keys, 300 more
 * than the test keys (several MIGRATE batches). One more key of the slot ends on both: a(0)'s copy
 * written before the handover, the owner's after it.
 */
async function strand(slot: number, target: string): Promise<Stray> {
  const extra = await keyOfSlot(slot);
  const keys = await withNode(a(0), async (c) => {
    await c.call("set", extra, "stray copy");
    await c.pipeline(Array.from({ length: 300 }, (_, i) => ["set", `${extra}:${i}`, `v${i}`]));
    const n = Number(await c.call("cluster", "countkeysinslot", slot));
    await c.call("cluster", "delslots", slot);
    return n;
  });
  await withNode(target, async (c) => {
    await c.call("cluster", "setslot", slot, "node", ids.get(target)!);
    await c.call("cluster", "bumpepoch");
  });
  await waitConsistent(all);
  await withNode(target, (c) => c.call("set", extra, "owner's copy"));
  const o = await observeCluster({ seeds: [a(0)] });
  expect(o.nodes.find((n) => n.addr === a(0))!.strayKeys).toEqual([{ slot, keys }]);
  return { slot, target, extra, keys };
}

/** The slots an earlier plan (a scale-in of a(0)) moved from a(0), with their targets, that hold test keys. */
function movesOf(planFile: string): { slot: number; to: string }[] {
  const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; slot: number; to: { addr: string } }[] };
  return plan.steps.filter((s) => s.kind === "migrate-slot").map((s) => ({ slot: s.slot, to: s.to.addr }));
}

async function expectRepaired(s: Stray): Promise<void> {
  expect(await withNode(s.target, (c) => c.call("get", s.extra))).toBe("owner's copy");
  expect(await withNode(s.target, (c) => c.call("get", `${s.extra}:299`))).toBe("v299");
  expect(await withNode(a(0), (c) => c.call("cluster", "countkeysinslot", s.slot))).toBe(0);
}

let oldPlan: string;
let moves: { slot: number; to: string }[];
const spec3 = () => specFile("three", [0, 1, 2]);

beforeAll(async () => {
  sb = await startNodes(BASE, 3);
  work = mkdtempSync(join(tmpdir(), "shardform-strays-"));
  await createCluster(all, 0);
  for (const addr of all) ids.set(addr, String(await withNode(addr, (c) => c.call("cluster", "myid"))));
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
  // The earlier plan: drain a(0). It is never applied; its moves are what the strays are blamed on.
  oldPlan = join(work, "scale-in.plan.json");
  const p = await runCli(["plan", specFile("scale-in", [1, 2]), "--out", oldPlan]);
  expect(p.code).toBe(0);
  moves = movesOf(oldPlan);
  expect(moves.length).toBeGreaterThan(100);
});
afterAll(async () => {
  await sb?.stop();
});

describe("keys left on a node that does not own their slot", { timeout: 120_000 }, () => {
  it("are refused without a plan that explains them; with --history, a destructive step moves them to the owner, whose copy wins", async () => {
    const s = await strand(moves[10]!.slot, moves[10]!.to);
    const spec = spec3();

    const refused = await runCli(["plan", spec, "--detailed-exitcode"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${a(0)} holds ${s.keys} key(s) of slot ${s.slot}, which ${s.target} owns, so clients cannot read them`);
    expect(refused.stderr).toContain("--history THAT_PLAN.json");

    const fix = join(work, "fix.plan.json");
    const p = await runCli(["plan", spec, "--history", oldPlan, "--out", fix, "--detailed-exitcode"]);
    expect(p.code).toBe(2);
    expect(p.stdout).toMatch(new RegExp(`move-stray-keys slot ${s.slot}: ${s.keys} key\\(s\\) on ${a(0)}, which does not own the slot, -> its owner ${s.target}.*\\(destructive\\)`));
    const plan = JSON.parse(readFileSync(fix, "utf8")) as { steps: { kind: string }[] };
    expect(plan.steps.map((x) => x.kind)).toEqual(["move-stray-keys"]);
    const validate = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync("schemas/plan.schema.json", "utf8")));
    expect(validate(plan) ? [] : validate.errors).toEqual([]);

    const r = await runCli(["apply", fix]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.stderr).toContain(`slot ${s.slot}: ${s.keys - 1} stray key(s) moved from ${a(0)} to its owner ${s.target}; 1 key(s) ${s.target} also held kept ${s.target}'s copy`);
    expect(r.code).toBe(0);
    await expectRepaired(s);
    await fullChecks(a(0), 3, KEYS, spec);
  });

  it("`apply SPEC` reads the spec's last plan as history", async () => {
    const s = await strand(moves[500]!.slot, moves[500]!.to);
    const spec = spec3();
    copyFileSync(oldPlan, join(work, "three.plan.json"));
    const r = await runCli(["apply", spec, "--auto-approve"]);
    expect(r.stdout).toContain(`move-stray-keys slot ${s.slot}`);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await expectRepaired(s);
    await fullChecks(a(0), 3, KEYS, spec);
  });

  it("killed mid-move (the holder IMPORTING the slot, some keys moved), resumes and finishes", async () => {
    const s = await strand(moves[900]!.slot, moves[900]!.to);
    const spec = spec3();
    const fix = join(work, "fix2.plan.json");
    expect((await runCli(["plan", spec, "--history", oldPlan, "--out", fix])).code).toBe(0);
    let open = "";
    const run = await runChild(["apply", fix, "--auto-approve", "--json-log", "--pipeline", "50"], async (e, child) => {
      if (e.type !== "failpoint") return;
      open = String(await withNode(a(0), (c) => c.call("cluster", "nodes")));
      child.kill("SIGKILL");
    }, { SHARDFORM_FAILPOINTS: "strays:batch@2" });
    expect(run.signal).toBe("SIGKILL");
    expect(open).toContain(`[${s.slot}-<-${ids.get(s.target)}]`);
    const r = await runCli(["apply", fix, "--auto-approve"]);
    expect(r.stderr).toMatch(/resuming: 0 of 1 step\(s\) done/);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await expectRepaired(s);
    await fullChecks(a(0), 3, KEYS, spec);
  });
});
