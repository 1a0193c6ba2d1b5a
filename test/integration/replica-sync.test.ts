/**
 * Replicas in their first sync, on servers with the stock repl-diskless-sync-delay (5 s: a master
 * waits that long for more replicas before it starts a sync). `apply && check` passes: apply waits
 * for the replicas it attached, saying so; and check reports a first sync as its own state.
 * Ports 21960-21965 (bus 31960-31965): this file's own range.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { withNode } from "../helpers/node.js";
import { fullChecks } from "../helpers/verify.js";

const BASE = 21960;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
let sb: TestSandbox;
let work: string;

beforeAll(async () => {
  sb = await startNodes(BASE, 6, undefined, { extraConfig: ["repl-diskless-sync-delay 5"] });
  work = mkdtempSync(join(tmpdir(), "shardform-replica-sync-"));
});
afterAll(async () => {
  await sb?.stop();
});

describe("first syncs with the stock repl-diskless-sync-delay", { timeout: 120_000 }, () => {
  let spec: string;

  it("apply waits until the replicas it attached have synced, saying so; check right after passes", async () => {
    spec = join(work, "c.yaml");
    writeFileSync(spec, [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`, ...[0, 1, 2].flatMap((m) => [`  - master: ${a(m)}`, `    replicas: [${a(m + 3)}]`])].join("\n") + "\n");
    await withNode(a(0), async (c) => expect(await c.call("config", "get", "repl-diskless-sync-delay")).toEqual(["repl-diskless-sync-delay", "5"]));
    const r = await runCli(["apply", spec, "--auto-approve", "--state-dir", work]);
    expect(r.stderr).toMatch(/waiting for 3 new replicas to finish the first sync \(a master starts it after its repl-diskless-sync-delay; up to \d+ s\)/);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    const c = await runCli(["check", "--seed", a(0)]);
    expect(c.stdout).not.toMatch(/link to its master is down/);
    expect(c.code).toBe(0);
  });

  it("check reports a replica waiting for its first sync to start as a first sync, not as a broken link", async () => {
    // a(5) moves by hand from a(2) to a(0), which waits 30 s before it sends the data (long enough for
    // every member to see the move; then check has nothing else to report).
    const masterId = await withNode(a(0), async (c) => {
      await c.call("config", "set", "repl-diskless-sync-delay", 30);
      return String(await c.call("cluster", "myid"));
    });
    await withNode(a(5), async (c) => c.call("cluster", "replicate", masterId));
    const replicaId = await withNode(a(5), async (c) => String(await c.call("cluster", "myid")));
    for (let i = 0; i < 100; i++) {
      const views = await Promise.all([0, 1, 2, 3, 4].map((k) => withNode(a(k), async (c) => String(await c.call("cluster", "nodes")))));
      if (views.every((v) => v.split("\n").some((l) => l.startsWith(replicaId) && l.includes(` ${masterId} `)))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = await runCli(["check", "--seed", a(0)]);
    expect(c.stdout).toMatch(/127\.0\.0\.1:21965: first sync with 127\.0\.0\.1:21960 in progress: starting; it serves no reads until it ends/);
    expect(c.stdout).not.toMatch(/link to its master is down/);
    expect(c.code).toBe(0);
    await withNode(a(0), async (x) => x.call("config", "set", "repl-diskless-sync-delay", 5));
    // Back where the spec has it (apply waits for the sync again), and every check passes.
    const r = await runCli(["apply", spec, "--auto-approve", "--state-dir", work]);
    expect(r.code).toBe(0);
    await fullChecks(a(0), 6, 0, spec);
  });
});
