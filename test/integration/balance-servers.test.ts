/**
 * Balancing by load on the other servers: Valkey 8 by cpu (CLUSTER SLOT-STATS, with live traffic on
 * hot tags of one master) and by keys; Redis 6.2 by keys, and by cpu refused with what is missing. A
 * server build that is not there is reported as skipped, by name. Each apply ends with the full checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { createCluster, startNodes, type TestSandbox } from "../helpers/cluster.js";
import { serverBuild, type ServerBuild } from "../helpers/compat.js";
import { runCli } from "../helpers/cli.js";
import { fullChecks } from "../helpers/verify.js";
import { withNode } from "../helpers/node.js";

const KEYS = 10_000;


/** `count` hash tags whose slots `addr` owns. */
async function tagsOn(seed: string, addr: string, count: number): Promise<string[]> {
  const o = await observeCluster({ seeds: [seed] });
  const [lo, hi] = o.nodes.find((n) => n.addr === addr)!.slots[0]!;
  return withNode(addr, async (c) => {
    const names = Array.from({ length: 5000 }, (_, i) => `hot${i}`);
    const slots = await c.pipeline(names.map((n) => ["cluster", "keyslot", n]));
    return names.filter((_, i) => Number(slots[i]![1]) >= lo && Number(slots[i]![1]) <= hi).slice(0, count);
  });
}

interface PlanJson {
  steps: { kind: string; from?: { addr: string } }[];
  balance?: { by: string; before: number; after: number };
}

/** A 3-master cluster of `build` on ports base..base+2, with test keys. */
function suite(build: ServerBuild, base: number, body: (ctx: { a: (i: number) => string; work: () => string; spec: (name: string, by: string) => string }) => void, extraConfig: string[] = []): void {
  if (build.missing) {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED: ${build.name} balance tests: ${build.missing}`);
    describe.skip(`${build.name}: balance by load (skipped: ${build.missing})`, () => it("runs when the build is there", () => {}));
    return;
  }
  let sb: TestSandbox;
  let work = "";
  const a = (i: number) => `127.0.0.1:${base + i}`;
  const spec = (name: string, by: string): string => {
    const f = join(work, `${name}.yaml`);
    writeFileSync(f, [`cluster:`, `  seeds: ["${a(0)}"]`, `  balance: { by: ${by} }`, `shards:`, ...[0, 1, 2].map((i) => `  - master: ${a(i)}`)].join("\n") + "\n");
    return f;
  };
  describe(`${build.name}: balance by load`, { timeout: 120_000 }, () => {
    beforeAll(async () => {
      sb = await startNodes(base, 3, undefined, { server: build.server, extraConfig });
      work = mkdtempSync(join(tmpdir(), `shardform-balance-${base}-`));
      await createCluster([a(0), a(1), a(2)], 0, undefined, build.cli);
      await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
    });
    afterAll(async () => {
      await sb?.stop();
    });
    body({ a, work: () => work, spec });
  });
}

// Ports 20970-20972 (bus 30970-30972).
suite(
  serverBuild("valkey-8.0.1"),
  20970,
  ({ a, work, spec }) => {
    it("by cpu: the master serving hot tags gives some of them away, measured over the load window with live traffic", async () => {
      const tags = await tagsOn(a(0), a(0), 12);
      let stop = false;
      // Traffic on the hot tags of a(0) for as long as plan measures.
      const traffic = withNode(a(0), async (c) => {
        for (let n = 0; !stop; n++) await c.pipeline(tags.flatMap((t) => [["set", `{${t}}:k`, String(n)], ["get", `{${t}}:k`]]));
      });
      const planFile = join(work(), "cpu.plan.json");
      const s = spec("cpu", "cpu");
      let p;
      try {
        p = await runCli(["plan", s, "--load-window", "3", "--out", planFile]);
      } finally {
        stop = true;
        await traffic;
      }
      process.stdout.write(`[by cpu on Valkey 8, as printed]\n${p.stdout}\n`);
      expect(p.code).toBe(0);
      expect(p.stdout).toMatch(/CPU time per slot from CLUSTER SLOT-STATS, two readings 3\.\d s apart/);
      const plan = JSON.parse(readFileSync(planFile, "utf8")) as PlanJson;
      expect(plan.balance!.by).toBe("cpu");
      expect(plan.balance!.before).toBeGreaterThan(50);
      expect(plan.steps.length).toBeGreaterThan(0);
      expect(plan.steps.every((x) => x.from?.addr === a(0))).toBe(true);
      const r = await runCli(["apply", planFile]);
      expect(r.stderr).toContain("Apply complete");
      expect(r.code).toBe(0);
      // Without traffic nothing weighs anything: the same spec finds nothing to move.
      await fullChecks(a(0), 3, KEYS, s, { cli: serverBuild("valkey-8.0.1").cli, planArgs: ["--load-window", "1"] });
    });

    it("by keys: measured with COUNTKEYSINSLOT", async () => {
      const p = await runCli(["plan", spec("keys", "keys")]);
      expect(p.code).toBe(0);
      expect(p.stdout).toContain("CLUSTER COUNTKEYSINSLOT of every slot (exact)");
    });
  },
  ["cluster-slot-stats-enabled yes"],
);

// Ports 20980-20982 (bus 30980-30982).
suite(serverBuild("redis-6.2.16"), 20980, ({ a, work, spec }) => {
  it("by keys: the master of a tag of many keys gives other slots away", async () => {
    const [tag] = await tagsOn(a(0), a(1), 1);
    await withNode(a(1), (c) => c.pipeline(Array.from({ length: 2000 }, (_, k) => ["set", `{${tag}}:${k}`, "1"])));
    const s = spec("keys", "keys");
    const planFile = join(work(), "keys.plan.json");
    const p = await runCli(["plan", s, "--out", planFile]);
    expect(p.code).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as PlanJson;
    expect(plan.balance!.after).toBeLessThanOrEqual(5);
    expect(plan.steps.every((x) => x.from?.addr === a(1))).toBe(true);
    const r = await runCli(["apply", planFile]);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await fullChecks(a(0), 3, KEYS, s, { cli: serverBuild("redis-6.2.16").cli });
  });

  it("by cpu is refused, saying what is missing", async () => {
    const p = await runCli(["plan", spec("cpu", "cpu"), "--load-window", "1"]);
    process.stdout.write(`[by cpu on Redis 6.2, as printed]\n${p.stderr}\n`);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/balance\.by: cpu needs per-slot CPU counters, which 127\.0\.0\.1:2098\d \(redis 6\.2\.16\) does not have: CLUSTER SLOT-STATS exists from Valkey 8\.0 on/);
  });
});
