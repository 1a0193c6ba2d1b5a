/**
 * Real clusters for tests: redis-server processes from the sandbox module, each test file
 * on its own port range and in its own temp directory, so files can run in parallel.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sandboxDown, sandboxUp } from "../../src/sandbox/local.js";
import { NodeClient } from "../../src/redis/connect.js";

export interface TestSandbox {
  dir: string;
  addrs: string[];
  stop(): Promise<void>;
}

export async function startNodes(basePort: number, count: number, password?: string): Promise<TestSandbox> {
  const dir = mkdtempSync(join(tmpdir(), `shardform-test-${basePort}-`));
  const sb = await sandboxUp({ nodes: count, basePort, dir, password, nodeTimeoutMs: 2000 });
  return {
    dir,
    addrs: sb.nodes.map((n) => `127.0.0.1:${n.port}`),
    stop: async () => {
      await sandboxDown({ dir });
    },
  };
}

/** Builds a cluster with redis-cli --cluster create (at least 3 masters) and waits until it is consistent. */
export async function createCluster(addrs: string[], replicas: number, password?: string): Promise<void> {
  const args = ["--cluster", "create", ...addrs, "--cluster-replicas", String(replicas), "--cluster-yes"];
  const r = spawnSync("redis-cli", args, { encoding: "utf8", env: { ...process.env, ...(password ? { REDISCLI_AUTH: password } : {}) } });
  if (r.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${r.stdout}\n${r.stderr}`);
  await waitConsistent(addrs, password);
}

/** Waits until every node reports cluster_state:ok and lists every other node with a connected link and roles agree. */
export async function waitConsistent(addrs: string[], password?: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const views: string[] = [];
    let ok = true;
    for (const a of addrs) {
      const c = await NodeClient.connect(a, password ? { access: { credentials: { password } } } : {});
      try {
        const info = String(await c.call("cluster", "info"));
        const repl = String(await c.call("info", "replication"));
        if (repl.includes("role:slave") && !repl.includes("master_link_status:up")) ok = false;
        const nodes = String(await c.call("cluster", "nodes"));
        if (!info.includes("cluster_state:ok")) ok = false;
        const lines = nodes.trim().split("\n");
        if (lines.length !== addrs.length || lines.some((l) => / (disconnected)|handshake|fail/.test(l))) ok = false;
        views.push(
          lines
            .map((l) => l.split(" "))
            .map((f) => `${f[0]} ${f[2]!.replace("myself,", "")} ${f[3]} ${f.slice(8).filter((s) => !s.startsWith("[")).join(",")}`)
            .sort()
            .join("\n"),
        );
      } finally {
        await c.close();
      }
    }
    if (ok && views.every((v) => v === views[0])) return;
    last = views.join("\n---\n");
    await sleep(200);
  }
  throw new Error(`cluster did not become consistent within ${timeoutMs} ms:\n${last}`);
}

/** Waits until every replica has applied all of its master's writes (its offset equals the master's). */
export async function waitReplicasCaughtUp(addrs: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    last = "";
    for (const a of addrs) {
      const c = await NodeClient.connect(a);
      try {
        const info = String(await c.call("info", "replication"));
        if (!info.includes("role:master")) continue;
        const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
        for (const m of info.matchAll(/slave\d+:ip=[^,]+,port=(\d+),state=\w+,offset=(\d+)/g)) {
          if (m[2] !== offset) last = `replica on port ${m[1]} is at offset ${m[2]}, its master ${a} at ${offset}`;
        }
      } finally {
        await c.close();
      }
    }
    if (last === "") return;
    await sleep(50);
  }
  throw new Error(`replicas did not catch up within ${timeoutMs} ms: ${last}`);
}
