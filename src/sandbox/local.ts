/**
 * A local sandbox: N cluster-enabled redis-server processes on 127.0.0.1, each with its own
 * directory, pidfile and log, recorded in <dir>/sandbox.json so that `down` stops exactly those PIDs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createConnection } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SandboxError } from "../errors.js";

export interface SandboxNode {
  port: number;
  pid: number;
  dir: string;
}

export interface Sandbox {
  dir: string;
  nodes: SandboxNode[];
}

export interface SandboxUpOptions {
  nodes: number;
  basePort: number;
  dir: string;
  password?: string | undefined;
  /** cluster-node-timeout in ms; small values make failure detection quick in tests. */
  nodeTimeoutMs?: number;
  redisServer?: string;
}

export const INSTALL_HINT =
  "redis-server was not found. Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`; macOS: `brew install redis`) or set SHARDFORM_REDIS_SERVER to its path.";

export function redisServerPath(): string {
  const bin = process.env["SHARDFORM_REDIS_SERVER"] ?? "redis-server";
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new SandboxError(INSTALL_HINT);
  return bin;
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      done(true);
    });
    s.once("error", () => done(false));
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function stateFile(dir: string): string {
  return join(dir, "sandbox.json");
}

export function readSandbox(dir: string): Sandbox | null {
  const f = stateFile(resolve(dir));
  if (!existsSync(f)) return null;
  return JSON.parse(readFileSync(f, "utf8")) as Sandbox;
}

export async function sandboxUp(opts: SandboxUpOptions): Promise<Sandbox> {
  const dir = resolve(opts.dir);
  const bin = opts.redisServer ?? redisServerPath();
  if (!(opts.nodes >= 1 && opts.nodes <= 1000)) throw new SandboxError(`--nodes must be between 1 and 1000, got ${opts.nodes}`);
  const last = opts.basePort + opts.nodes - 1;
  if (opts.basePort < 1024 || last + 10000 > 65535) {
    throw new SandboxError(`ports ${opts.basePort}-${last} and their bus ports (+10000) must lie within 1024-65535: pick a base port such as 7000`);
  }
  const existing = readSandbox(dir);
  if (existing && existing.nodes.some((n) => isAlive(n.pid))) {
    throw new SandboxError(`a sandbox is already running in ${dir}: run \`shardform sandbox down --dir ${opts.dir}\` first`);
  }
  const busy: number[] = [];
  for (let p = opts.basePort; p <= last; p++) {
    if ((await portInUse(p)) || (await portInUse(p + 10000))) busy.push(p);
  }
  if (busy.length > 0) throw new SandboxError(`port(s) ${busy.join(", ")} (or their bus port +10000) are in use: pick another --base-port`);

  mkdirSync(dir, { recursive: true });
  const sandbox: Sandbox = { dir, nodes: [] };
  try {
    for (let i = 0; i < opts.nodes; i++) {
      const port = opts.basePort + i;
      const nodeDir = join(dir, String(port));
      rmSync(nodeDir, { recursive: true, force: true });
      mkdirSync(nodeDir, { recursive: true });
      const conf = [
        `port ${port}`,
        `bind 127.0.0.1`,
        `protected-mode no`,
        `cluster-enabled yes`,
        `cluster-config-file nodes.conf`,
        `cluster-node-timeout ${opts.nodeTimeoutMs ?? 5000}`,
        `appendonly no`,
        // A sandbox replica syncs at once instead of waiting 5 s for more replicas to share the transfer.
        `repl-diskless-sync-delay 0`,
        `save ""`,
        `dir ${nodeDir}`,
        `pidfile ${join(nodeDir, "redis.pid")}`,
        `logfile ${join(nodeDir, "redis.log")}`,
        `daemonize yes`,
        ...(opts.password ? [`requirepass "${opts.password}"`, `masterauth "${opts.password}"`] : []),
      ];
      const confFile = join(nodeDir, "redis.conf");
      writeFileSync(confFile, conf.join("\n") + "\n");
      chmodSync(confFile, 0o600);
      const r = spawnSync(bin, [confFile], { encoding: "utf8" });
      if (r.status !== 0) throw new SandboxError(`redis-server on port ${port} failed to start: ${r.stderr || r.stdout}`);
      const pid = await waitForPid(join(nodeDir, "redis.pid"), join(nodeDir, "redis.log"));
      sandbox.nodes.push({ port, pid, dir: nodeDir });
      writeFileSync(stateFile(dir), JSON.stringify(sandbox, null, 2) + "\n");
    }
    for (const n of sandbox.nodes) await waitForPort(n.port);
  } catch (err) {
    await sandboxDown({ dir, keepFiles: true });
    throw err;
  }
  return sandbox;
}

async function waitForPid(pidFile: string, logFile: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      if (pid > 0) return pid;
    }
    await sleep(25);
  }
  const log = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-5).join("\n") : "(no log)";
  throw new SandboxError(`redis-server did not write ${pidFile} within 5 s. Last log lines:\n${log}`);
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await portInUse(port)) return;
    await sleep(25);
  }
  throw new SandboxError(`redis-server on port ${port} did not accept connections within 5 s`);
}

function isRedisServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("redis-server");
  } catch {
    // No /proc (macOS): trust the pidfile we wrote.
    return isAlive(pid);
  }
}

export interface SandboxDownOptions {
  dir: string;
  /** Keep data directories and logs (default: remove them). */
  keepFiles?: boolean;
}

/** Stops exactly the PIDs recorded in the sandbox. Returns the ports stopped. */
export async function sandboxDown(opts: SandboxDownOptions): Promise<number[]> {
  const dir = resolve(opts.dir);
  const sb = readSandbox(dir);
  if (!sb) throw new SandboxError(`no sandbox in ${dir} (no sandbox.json): nothing to stop`);
  const stopped: number[] = [];
  for (const n of sb.nodes) {
    if (isAlive(n.pid) && isRedisServer(n.pid)) {
      process.kill(n.pid, "SIGTERM");
      stopped.push(n.port);
    }
  }
  for (const n of sb.nodes) {
    for (let i = 0; i < 200 && isAlive(n.pid); i++) await sleep(25);
    if (isAlive(n.pid) && isRedisServer(n.pid)) process.kill(n.pid, "SIGKILL");
  }
  if (!opts.keepFiles) rmSync(dir, { recursive: true, force: true });
  else rmSync(stateFile(dir), { force: true });
  return stopped;
}
