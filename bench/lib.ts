/**
 * Building blocks of the benchmark: sandbox clusters on loopback, timed child processes with their
 * peak memory, and the end checks every apply test also makes (keys, views, open slots, coverage).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sandboxDown, sandboxUp } from "../src/sandbox/local.js";
import { observeCluster } from "../src/observe/observe.js";
import { verifyTestKeys } from "../src/testdata/populate.js";
import { countSlots } from "../src/slots.js";
import { NodeClient } from "../src/redis/connect.js";

export const ROOT = resolve(import.meta.dirname, "../..");
/** The CLI the bench times; SHARDFORM_BENCH_CLI names another build (e.g. an older commit's, to compare). */
export const CLI = process.env.SHARDFORM_BENCH_CLI ?? join(ROOT, "bin", "shardform.js");

export interface BenchCluster {
  dir: string;
  addrs: string[];
  stop(): Promise<void>;
}

export async function startNodes(basePort: number, count: number, server?: string, nodeTimeoutMs?: number): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), `shardform-bench-${basePort}-`));
  const sb = await sandboxUp({ nodes: count, basePort, dir, ...(server ? { server } : {}), ...(nodeTimeoutMs ? { nodeTimeoutMs } : {}) });
  return {
    dir,
    addrs: sb.nodes.map((n) => `127.0.0.1:${n.port}`),
    stop: async () => {
      await sandboxDown({ dir });
    },
  };
}

export function redisCli(args: string[], input?: string): string {
  const r = spawnSync("redis-cli", args, { encoding: "utf8", input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Waits until every node is in cluster_state:ok, lists all the others with a connected link, and all views agree. */
export async function waitConsistent(addrs: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const o = await observeCluster({ seeds: [addrs[0]!], probe: addrs });
      const problems = [
        ...o.disagreements,
        ...o.nodes.filter((n) => n.clusterState !== "ok").map((n) => `${n.addr} cluster_state:${n.clusterState}`),
        ...(o.nodes.length === addrs.length ? [] : [`${o.nodes.length} members, expected ${addrs.length}`]),
      ];
      if (problems.length === 0) return;
      last = problems.slice(0, 5).join("; ");
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`the cluster did not settle within ${timeoutMs} ms: ${last}`);
}

export interface Timed {
  secs: number;
  /** Peak resident memory of the process in MB, from /usr/bin/time (null where it is missing). */
  peakMb: number | null;
  stdout: string;
  stderr: string;
}

const GNU_TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;

/** Runs a command to completion and times it; throws with its output when it fails. */
export async function timed(cmd: string, args: string[], opts: { env?: Record<string, string>; stdinFile?: string } = {}): Promise<Timed> {
  const rssFile = join(tmpdir(), `shardform-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const [bin, argv] = GNU_TIME ? [GNU_TIME, ["-f", "%M", "-o", rssFile, cmd, ...args]] : [cmd, args];
  const started = performance.now();
  const child = spawn(bin, argv, { env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
  if (opts.stdinFile) {
    const { createReadStream } = await import("node:fs");
    createReadStream(opts.stdinFile).pipe(child.stdin);
  } else child.stdin.end();
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((done) => child.on("close", done));
  const secs = (performance.now() - started) / 1000;
  let peakMb: number | null = null;
  if (GNU_TIME && existsSync(rssFile)) {
    const kb = Number(readFileSync(rssFile, "utf8").trim().split("\n").pop());
    if (kb > 0) peakMb = kb / 1024;
    rmSync(rssFile, { force: true });
  }
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  return { secs, peakMb, stdout, stderr };
}

export function shardform(args: string[]): Promise<Timed> {
  return timed(process.execPath, [CLI, ...args]);
}

/** The checks every apply test ends with: every key back with its value, views agree, no open slot, 16384 slots covered. */
export async function endChecks(seed: string, members: number, keys: number): Promise<string> {
  const o = await observeCluster({ seeds: [seed] });
  const problems: string[] = [...o.disagreements];
  if (o.nodes.length !== members) problems.push(`${o.nodes.length} members, expected ${members}`);
  const open = o.nodes.flatMap((n) => [...n.migrating, ...n.importing]);
  if (open.length > 0) problems.push(`${open.length} open slot(s)`);
  const covered = o.nodes.filter((n) => n.role === "master").reduce((s, n) => s + countSlots(n.slots), 0);
  if (covered !== 16384) problems.push(`${covered} slots covered`);
  const v = await verifyTestKeys(o, { keys });
  if (v.checked !== keys || v.missing.length || v.wrong.length) problems.push(`keys: ${v.checked} checked, ${v.missing.length} missing, ${v.wrong.length} wrong`);
  if (problems.length > 0) throw new Error(`end checks failed:\n  ${problems.join("\n  ")}`);
  const masters = o.nodes.filter((n) => n.role === "master" && n.slots.length > 0);
  return `${keys} keys verified, ${masters.length} masters (${masters.map((m) => countSlots(m.slots)).join("/")} slots), views agree, no open slot`;
}

export async function nodeId(addr: string): Promise<string> {
  const c = await NodeClient.connect(addr);
  try {
    return String(await c.call("cluster", "myid"));
  } finally {
    await c.close();
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
