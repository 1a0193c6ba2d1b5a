/**
 * Keys that MIGRATE cannot move at the first try: a key too big for the timeout (the timeout grows
 * until it moves), a target that refuses keys (apply stops, names the key, and resumes after the
 * fix), and a key too big to move within a quarter of cluster-node-timeout (plan warns about it;
 * apply stops naming it rather than block its source long enough to be failed over). Every key is
 * checked afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import calculateSlot from "cluster-key-slot";
import { observeCluster } from "../../src/observe/observe.js";
import { populate, slotOwners } from "../../src/testdata/populate.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { expectAllKeys, expectHealthy } from "../helpers/verify.js";
import { withNode } from "../helpers/node.js";

// Ports 21500-21503 (bus 31500-31503): this file's own range.
const BASE = 21500;
const KEYS = 20_000;
const BIG = 32 << 20;
let sb: TestSandbox;
let work: string;
let bigKey = "";
const a = (i: number) => `127.0.0.1:${BASE + i}`;

function spec(name: string, masters: number[]): string {
  const f = join(work, `${name}.yaml`);
  writeFileSync(f, [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`, ...masters.map((m) => `  - master: ${a(m)}`)].join("\n") + "\n");
  return f;
}


async function ownerOf(key: string): Promise<string> {
  return slotOwners(await observeCluster({ seeds: [a(0)] }))[calculateSlot(key)]!;
}

async function expectBigKey(): Promise<void> {
  const [len, head, tail] = await withNode(await ownerOf(bigKey), async (c) => [
    await c.call("strlen", bigKey),
    await c.call("getrange", bigKey, 0, 7),
    await c.call("getrange", bigKey, BIG - 8, BIG - 1),
  ]);
  expect([len, head, tail]).toEqual([BIG, "big:0000", "big:ends"]);
}

beforeAll(async () => {
  sb = await startNodes(BASE, 4);
  work = mkdtempSync(join(tmpdir(), "shardform-big-"));
  expect((await runCli(["apply", spec("create", [0, 1, 2]), "--auto-approve"])).code).toBe(0);
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
  // A 32 MB key in a slot that the scale-out moves to the 4th master (it takes 4096-5460 of a(0)).
  for (let n = 0; !bigKey; n++) {
    const slot = calculateSlot(`{big${n}}`);
    if (slot >= 4200 && slot <= 5400) bigKey = `{big${n}}:value`;
  }
  const value = "big:0000" + "x".repeat(BIG - 16) + "big:ends";
  await withNode(await ownerOf(bigKey), (c) => c.call("set", bigKey, value));
});
afterAll(async () => {
  await sb?.stop();
});

describe("keys that do not move at the first try", { timeout: 120_000 }, () => {
  it("a key too big for the MIGRATE timeout moves once the timeout has grown", async () => {
    const r = await runCli(["apply", spec("out", [0, 1, 2, 3]), "--auto-approve", "--migrate-timeout", "1"]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`MIGRATE of key "\\{big\\d+\\}:value" timed out; retrying with a [\\d.]+ s timeout`));
    expect(await ownerOf(bigKey)).toBe(a(3));
    await expectBigKey();
    await expectHealthy(a(0), 4);
    await expectAllKeys(a(0), KEYS);
  });

  it("a target that refuses keys stops apply with the key named; the same apply resumes after the fix", async () => {
    const planFile = join(work, "in.json");
    expect((await runCli(["plan", spec("in", [0, 1, 2]), "--out", planFile])).code).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; slot?: number; to?: { addr: string } }[] };
    const target = plan.steps.find((s) => s.kind === "migrate-slot" && s.slot === calculateSlot(bigKey))!.to!.addr;
    // Below its memory in use: the target refuses every RESTORE with OOM.
    await withNode(target, (c) => c.call("config", "set", "maxmemory", "1mb"));
    const failed = await runCli(["apply", planFile, "--auto-approve"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/key ".+" \(\d+ bytes\) of slot \d+ did not move from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+: .*OOM.*\. It is still on 127\.0\.0\.1:\d+\. Fix the cause on the target \(e\.g\. its maxmemory\), then run apply again/s);
    expect(failed.stderr).toMatch(/resume with: shardform apply .*in\.json --auto-approve/);

    await withNode(target, (c) => c.call("config", "set", "maxmemory", "0"));
    const resumed = await runCli(["apply", planFile, "--auto-approve"]);
    expect(resumed.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done/);
    expect(resumed.code).toBe(0);
    await expectBigKey();
    await expectHealthy(a(0), 3);
    await expectAllKeys(a(0), KEYS);
  });

  it("a key that cannot move within a quarter of cluster-node-timeout: plan warns, apply stops naming it; with a larger timeout the same apply finishes", async () => {
    // 256 MB in a slot the scale-out moves, and a cluster-node-timeout of 1 s: MIGRATE may block its source for 250 ms at most.
    let huge = "";
    for (let n = 0; !huge; n++) {
      const slot = calculateSlot(`{huge${n}}`);
      if (slot >= 4200 && slot <= 5400 && slot !== calculateSlot(bigKey)) huge = `{huge${n}}:value`;
    }
    const chunk = Buffer.alloc(16 << 20, "h");
    await withNode(await ownerOf(huge), async (c) => {
      for (let i = 0; i < 16; i++) await c.callBufferWithin(30_000, "append", huge, chunk);
    });
    const setTimeouts = (ms: number) => Promise.all([0, 1, 2, 3].map((i) => withNode(a(i), (c) => c.call("config", "set", "cluster-node-timeout", ms))));
    await setTimeouts(1000);
    try {
      const planFile = join(work, "huge.json");
      const p = await runCli(["plan", spec("huge", [0, 1, 2, 3]), "--out", planFile]);
      expect(p.code).toBe(0);
      expect(p.stdout).toMatch(/Warning: the slots this plan moves hold big keys .*"\{huge\d+\}:value" \(\d+\.\d MB, slot \d+ on 127\.0\.0\.1:21500\).*apply keeps each MIGRATE under 0\.25 s \(a quarter of cluster-node-timeout 1000 ms\)/s);
      const failed = await runCli(["apply", planFile, "--auto-approve"]);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/key "\{huge\d+\}:value" \(\d{9} bytes\) of slot \d+ did not move from 127\.0\.0\.1:21500 to 127\.0\.0\.1:21503 within 0\.3 s: .*a quarter of cluster-node-timeout \(1000 ms\).*Raise cluster-node-timeout/s);
      await setTimeouts(15_000);
      const resumed = await runCli(["apply", planFile, "--auto-approve"]);
      expect(resumed.stderr).toContain("Apply complete");
      expect(resumed.code).toBe(0);
      const [len] = await withNode(await ownerOf(huge), async (c) => [await c.call("strlen", huge)]);
      expect(len).toBe(256 << 20);
      await expectBigKey();
      await expectHealthy(a(0), 4);
      await expectAllKeys(a(0), KEYS);
    } finally {
      await setTimeouts(2000);
    }
  });
});
