/**
 * Real clusters for tests: server processes from the sandbox module, each test file on its own port
 * range and in its own temp directory, so files can run in parallel. Faults are caused on the real
 * processes: SIGSTOP/SIGCONT, kill -9, a restart with the node's own config and nodes.conf.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { readSandbox, sandboxDown, sandboxRestart, sandboxUp, type SandboxUpOptions } from "../../src/sandbox/local.js";
import { NodeClient, type Access } from "../../src/redis/connect.js";

export interface TestSandbox {
  dir: string;
  addrs: string[];
  stop(): Promise<void>;
  /** The pid of the node on that port now (after restarts too). */
  pid(port: number): number;
  pause(port: number): void;
  resume(port: number): void;
  kill9(port: number): void;
  restart(port: number): Promise<void>;
}

export async function startNodes(basePort: number, count: number, password?: string, opts: Partial<SandboxUpOptions> = {}): Promise<TestSandbox> {
  const dir = mkdtempSync(join(tmpdir(), `shardform-test-${basePort}-`));
  const sb = await sandboxUp({ nodes: count, basePort, dir, password, nodeTimeoutMs: 2000, ...opts });
  const nodeDir = (port: number) => join(dir, String(port));
  const pid = (port: number): number => {
    const f = join(nodeDir(port), "server.pid");
    return existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : readSandbox(dir)!.nodes.find((n) => n.port === port)!.pid;
  };
  return {
    dir,
    addrs: sb.nodes.map((n) => `${n.host ?? "127.0.0.1"}:${n.port}`),
    stop: async () => {
      await sandboxDown({ dir });
    },
    pid,
    pause: (port) => process.kill(pid(port), "SIGSTOP"),
    resume: (port) => process.kill(pid(port), "SIGCONT"),
    kill9: (port) => process.kill(pid(port), "SIGKILL"),
    restart: async (port) => {
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid(port), 0);
          await sleep(20);
        } catch {
          break;
        }
      }
      await sandboxRestart(dir, port);
    },
  };
}

/** Builds a cluster with redis-cli --cluster create (at least 3 masters) and waits until it is consistent. */
export async function createCluster(addrs: string[], replicas: number, password?: string, cli = "redis-cli"): Promise<void> {
  const args = ["--cluster", "create", ...addrs, "--cluster-replicas", String(replicas), "--cluster-yes"];
  const r = spawnSync(cli, args, { encoding: "utf8", env: { ...process.env, ...(password ? { REDISCLI_AUTH: password } : {}) } });
  if (r.status !== 0) throw new Error(`${cli} --cluster create failed:\n${r.stdout}\n${r.stderr}`);
  await waitConsistent(addrs, password);
}

/** Waits until every node reports cluster_state:ok and lists every other node with a connected link and roles agree. */
export async function waitConsistent(addrs: string[], password?: string, timeoutMs = 30_000, access?: Access): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const views: string[] = [];
    let ok = true;
    for (const a of addrs) {
      const c = await NodeClient.connect(a, { access: access ?? (password ? { credentials: { password } } : {}) });
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
