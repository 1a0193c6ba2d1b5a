/**
 * Slot moves by the server's own migration (Valkey 9+ CLUSTER MIGRATESLOTS; safety rule 10), on real
 * Valkey 9 processes: a scale-out shown and applied as atomic moves, apply killed (kill -9) while the
 * server migrates and resumed, a source stopped (SIGSTOP) past cluster-node-timeout mid-migration (its
 * replica promoted), `--migration keys` on the same servers, and keys in a database other than 0
 * (cluster-databases 4): moved by the server's migration, refused key by key, written and read back by
 * `populate --db`, and reported by `check` where their slot is not owned; and a target failed over
 * mid-migration. Each ends with the full checks. Skipped, by name, when the
 * Valkey 9 build (scripts/servers.sh) is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { serverBuild } from "../helpers/compat.js";
import { runCli } from "../helpers/cli.js";
import { runChild } from "../helpers/child.js";
import { NodeClient } from "../../src/redis/connect.js";
import { fullChecks } from "../helpers/verify.js";
import { shardLayout } from "../helpers/shards.js";

// Ports 20810-20817 (bus 30810-30817): this file's own range.
const BASE = 20810;
const KEYS = 30_000;
const build = serverBuild("valkey-9.1.2");
const checks = { cli: build.cli };
let sb: TestSandbox;
let work: string;
const { a, replicaOf, spec } = shardLayout(BASE, () => work);

/** `apply SPEC` until it exits 0 (a first run may end naming a failover it saw), at most three times. */
async function applyUntilDone(f: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await runCli(["apply", f, "--auto-approve"]);
    if (r.code === 0) return;
  }
  throw new Error(`apply ${f} did not finish`);
}

if (build.missing) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED: ${build.name} atomic migration tests: ${build.missing}`);
  describe.skip(`${build.name}: atomic slot migration (skipped: ${build.missing})`, () => it("runs when the build is there", () => {}));
} else {
  describe(`${build.name}: slot moves by the server's own migration`, { timeout: 180_000 }, () => {
    beforeAll(async () => {
      sb = await startNodes(BASE, 8, undefined, { server: build.server, extraConfig: ["cluster-databases 4"] });
      work = mkdtempSync(join(tmpdir(), "shardform-atomic-"));
      const r = await runCli(["apply", spec("three", [0, 1, 2]), "--auto-approve"]);
      expect(r.code).toBe(0);
      await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
    });
    afterAll(async () => {
      await sb?.stop();
    });

    it("a scale-out is planned as atomic moves; apply killed (kill -9) while the server migrates resumes without a second migration", async () => {
      const f = spec("four", [0, 1, 2, 6]);
      const planFile = join(work, "four.json");
      const p = await runCli(["plan", f, "--out", planFile]);
      expect(p.code).toBe(0);
      expect(p.stdout).toMatch(/migrate-slot .* \(\d+ slots, ~[\d.]+K? keys\) 127\.0\.0\.1:2081\d -> 127\.0\.0\.1:20816 \(atomic\)/);
      const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; atomic?: boolean }[] };
      const moves = plan.steps.filter((s) => s.kind === "migrate-slot");
      expect(moves.length).toBe(4096);
      expect(moves.every((s) => s.atomic === true)).toBe(true);
      // Frozen right after the third window's migration started on its source, then killed.
      const r = await runChild(["apply", planFile, "--auto-approve", "--json-log", "--window", "256"], (e, child) => {
        if (e.type === "failpoint") child.kill("SIGKILL");
      }, { SHARDFORM_FAILPOINTS: "atomic:started@3" });
      expect(r.signal).toBe("SIGKILL");
      // The checkpoint names each migration the moment it started: a resume follows them, never starting a second.
      const journal = JSON.parse(readFileSync(join(work, "four.checkpoint.json"), "utf8")) as { migrations?: Record<string, string> };
      expect(Object.values(journal.migrations ?? {})).toHaveLength(3);
      expect(Object.values(journal.migrations!).every((w) => /^[0-9a-f]{40}>[0-9a-f]{40} [\d,-]+$/.test(w))).toBe(true);
      const resumed = await runCli(["apply", planFile, "--auto-approve"]);
      expect(resumed.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done/);
      expect(resumed.stderr).toContain("Apply complete");
      expect(resumed.code).toBe(0);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("SIGSTOP of a source past cluster-node-timeout mid-migration (its replica is promoted): no key is stranded, and apply SPEC ends in the spec", async () => {
      // The first shard's weight doubles: the other three each give it slots.
      const f = spec("four-weighted", [0, 1, 2, 6]).replace(/$/, "");
      writeFileSync(f, readFileSync(f, "utf8").replace(`  - master: ${a(0)}\n`, `  - master: ${a(0)}\n    weight: 2\n`));
      let paused = "";
      let windows = 0;
      const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--window", "128", "--parallelism", "1"], async (e) => {
        if (e.type === "step-done" && e.kind === "migrate-slot") windows++;
        if (paused || windows < 128 || e.type !== "step-start" || e.kind !== "migrate-slot") return;
        paused = /(\S+) -> \S+/.exec(e.message ?? (e as { text?: string }).text ?? "")![1]!;
        const port = Number(paused.split(":")[1]);
        sb.pause(port);
        await sleep(6000); // cluster-node-timeout is 2 s: its replica takes over meanwhile
        sb.resume(port);
      });
      expect(paused).not.toBe("");
      process.stdout.write(`[SIGSTOP of ${paused}: apply exited ${String(r.code)}]\n${r.stderr}\n`);
      // The window in flight may have finished before the pause bit; when the cluster failed the source over, apply says so.
      expect([0, 1]).toContain(r.code);
      if (r.code === 1) expect(r.stderr).toContain(`${paused} is now a replica of ${replicaOf.get(paused)}`);
      await applyUntilDone(f);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("--migration keys moves key by key on the same servers", async () => {
      const f = spec("four-by-keys", [0, 1, 2, 6]);
      const p = await runCli(["plan", f, "--migration", "keys"]);
      expect(p.code).toBe(0);
      expect(p.stdout).toContain("migrate-slot");
      expect(p.stdout).not.toContain("(atomic)");
      const r = await runCli(["apply", f, "--auto-approve", "--migration", "keys"]);
      expect(r.stderr).toContain("Apply complete");
      expect(r.code).toBe(0);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("keys in database 1 move with their slot by the server's migration; key by key is refused, naming the databases", async () => {
      const f = spec("four-weighted-6", [0, 1, 2, 6]);
      writeFileSync(f, readFileSync(f, "utf8").replace(`  - master: ${a(6)}\n`, `  - master: ${a(6)}\n    weight: 2\n`));
      const planFile = join(work, "db1.json");
      expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
      const move = (JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; slot: number; from: { addr: string }; to: { addr: string } }[] }).steps.find((s) => s.kind === "migrate-slot")!;
      const c = await NodeClient.connect(move.from.addr);
      let key = "";
      try {
        const names = Array.from({ length: 40_000 }, (_, i) => `db1:{${i}}`);
        const slots = await c.pipeline(names.map((n) => ["cluster", "keyslot", n]));
        key = names[slots.findIndex(([, s]) => Number(s) === move.slot)]!;
        await c.pipeline([["select", 1], ["set", key, "in database 1"], ["select", 0]]);
      } finally {
        await c.close();
      }
      // Test keys in database 1 too, written and read back by populate --db.
      expect((await runCli(["populate", "--seed", a(0), "--keys", "3000", "--prefix", "db1k:", "--db", "1"])).code).toBe(0);
      const refused = await runCli(["plan", f, "--migration", "keys"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${move.from.addr} holds keys in database(s) 1 besides 0, and a key-by-key slot move sees database 0 only: they would stay behind`);
      // The plan saved before the key was written is stale only in what it does not fingerprint: plan again.
      const p = await runCli(["plan", f, "--out", planFile]);
      expect(p.code).toBe(0);
      const r = await runCli(["apply", planFile]);
      expect(r.stderr).toContain("Apply complete");
      expect(r.code).toBe(0);
      const t = await NodeClient.connect(move.to.addr);
      try {
        const [, [, value]] = (await t.pipeline([["select", 1], ["get", key], ["select", 0]])) as [unknown, [Error | null, unknown]];
        expect(value).toBe("in database 1");
      } finally {
        await t.close();
      }
      const v = await runCli(["populate", "--seed", a(0), "--keys", "3000", "--prefix", "db1k:", "--db", "0,1", "--verify"]);
      expect(v.stdout).toContain("Checked 3000 keys in database 1: 0 missing, 0 with a wrong value.");
      expect(v.stdout).toContain("Checked 3000 keys in database 0: 3000 missing, 0 with a wrong value.");
      expect(v.code).toBe(1); // database 0 has none of them
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("a key of database 1 on a master that does not own its slot: check reports it by database, plan refuses it", async () => {
      const f = join(work, "four-weighted-6.yaml"); // the spec the test before applied
      const o = await observeCluster({ seeds: [a(0)] });
      const owner = o.nodes.find((n) => n.role === "master" && n.slots.length > 0)!;
      const other = o.nodes.find((n) => n.role === "master" && n.id !== owner.id)!;
      const slot = owner.slots[0]![0];
      const c = await NodeClient.connect(other.addr);
      const names = Array.from({ length: 40_000 }, (_, i) => `stray:{${i}}`);
      const key = names[(await c.pipeline(names.map((n) => ["cluster", "keyslot", n]))).findIndex(([, s]) => Number(s) === slot)]!;
      // Written the way only a half-done move could: into an import the node was given by hand.
      const put = async (cmd: (string | number)[]): Promise<void> => {
        const res = await c.pipeline([["cluster", "setslot", slot, "importing", owner.id], ["select", 1], ["asking"], cmd, ["select", 0], ["cluster", "setslot", slot, "stable"]]);
        for (const [err] of res) if (err) throw err;
      };
      try {
        await put(["set", key, "stray"]);
        const chk = await runCli(["check", "--seed", a(0)]);
        expect(chk.code).toBe(1);
        expect(chk.stdout).toContain(`${other.addr} holds 1 key(s) of slot ${slot} in database 1, which ${owner.addr} owns`);
        const p = await runCli(["plan", f]);
        expect(p.code).toBe(1);
        expect(p.stderr).toContain(`holds 1 key(s) of slot ${slot} in database 1, which ${owner.addr} owns, so clients cannot read them. shardform repairs stray keys in database 0 only`);
        await put(["del", key]);
      } finally {
        await c.close();
      }
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("a target failed over (CLUSTER FAILOVER on its replica) mid-migration: the moves go on into the shard's new master; apply SPEC ends in the spec", async () => {
      const f = spec("four-equal", [0, 1, 2, 6]);
      let failedOver = "";
      const r = await runChild(["apply", f, "--auto-approve", "--json-log", "--parallelism", "1"], async (e) => {
        if (failedOver || e.type !== "step-start" || e.kind !== "migrate-slot") return;
        failedOver = /\S+ -> (\S+)/.exec(e.message ?? (e as { text?: string }).text ?? "")![1]!;
        const c = await NodeClient.connect(replicaOf.get(failedOver)!);
        try {
          await c.call("cluster", "failover");
        } finally {
          await c.close();
        }
      });
      expect(failedOver).not.toBe("");
      process.stdout.write(`[target ${failedOver} failed over: apply exited ${String(r.code)}]\n${r.stderr}\n`);
      expect([0, 1]).toContain(r.code);
      if (r.code === 1) expect(r.stderr).toContain(`${failedOver} is now a replica of ${replicaOf.get(failedOver)}`);
      await applyUntilDone(f);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });
  });
}
