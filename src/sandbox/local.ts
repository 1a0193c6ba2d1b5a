/**
 * A local sandbox: N cluster-enabled server processes (redis-server, or another build such as
 * valkey-server) on 127.0.0.1, each with its own directory, config, pidfile and log, recorded in
 * <dir>/sandbox.json so that `down` stops exactly those processes (also after a node was restarted:
 * its pidfile names the current process).
 */
import { makeDirs } from "../util/make-dirs.js";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createConnection } from "node:net";
import { basename, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SandboxError } from "../errors.js";
import { makeTlsFiles, type TlsFiles } from "./tls.js";

export interface SandboxNode {
  port: number;
  /** The process started last for this node. */
  pid: number;
  dir: string;
  /** With TLS: the TLS port (clients); `port` is then closed to plain connections. */
  host?: string;
}

export interface Sandbox {
  dir: string;
  server: string;
  tls?: TlsFiles;
  nodes: SandboxNode[];
}

export interface SandboxUpOptions {
  nodes: number;
  basePort: number;
  dir: string;
  password?: string | undefined;
  /** cluster-node-timeout in ms; small values make failure detection quick in tests. */
  nodeTimeoutMs?: number;
  /** Path of the server binary (default: SHARDFORM_REDIS_SERVER, else redis-server on PATH). */
  server?: string | undefined;
  /** Make a CA and node certificates, and serve TLS only (tls-cluster and tls-replication too). */
  tls?: boolean;
  /** Loopback addresses to spread the nodes over (127.0.0.1, 127.0.0.2, ...), one per node in turn. */
  hosts?: string[];
  /** Extra config lines for every node. */
  extraConfig?: string[];
}

export const INSTALL_HINT =
  "redis-server was not found. Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`; macOS: `brew install redis`), set SHARDFORM_REDIS_SERVER to its path, or pass --server PATH.";

export function serverPath(explicit?: string): string {
  const bin = explicit ?? process.env["SHARDFORM_REDIS_SERVER"] ?? "redis-server";
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new SandboxError(explicit || process.env["SHARDFORM_REDIS_SERVER"] ? `${bin} does not run (${r.error?.message ?? r.stderr.trim()}): pass the path of a redis-server or valkey-server binary` : INSTALL_HINT);
  }
  return bin;
}

function portInUse(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((done) => {
    const s = createConnection({ host, port });
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

function writeSandbox(sb: Sandbox): void {
  writeFileSync(stateFile(sb.dir), JSON.stringify(sb, null, 2) + "\n");
}

function nodeConfig(opts: SandboxUpOptions, port: number, host: string, nodeDir: string, tls: TlsFiles | undefined): string[] {
  return [
    ...(tls
      ? [
          `port 0`,
          `tls-port ${port}`,
          `tls-cluster yes`,
          `tls-replication yes`,
          `tls-cert-file ${tls.nodeCert}`,
          `tls-key-file ${tls.nodeKey}`,
          `tls-ca-cert-file ${tls.ca}`,
          `tls-auth-clients optional`,
        ]
      : [`port ${port}`]),
    `bind ${host}`,
    // Redis 7+ and Valkey no longer send cluster-bus traffic from the bind address, so peers would see
    // every loopback "host" as 127.0.0.1: announce it.
    ...(host !== "127.0.0.1" ? [`cluster-announce-ip ${host}`] : []),
    `protected-mode no`,
    `cluster-enabled yes`,
    `cluster-config-file nodes.conf`,
    `cluster-node-timeout ${opts.nodeTimeoutMs ?? 5000}`,
    `appendonly no`,
    // A sandbox replica syncs at once instead of waiting 5 s for more replicas to share the transfer.
    `repl-diskless-sync-delay 0`,
    `save ""`,
    `dir ${nodeDir}`,
    `pidfile ${join(nodeDir, "server.pid")}`,
    `logfile ${join(nodeDir, "server.log")}`,
    `daemonize yes`,
    ...(opts.password ? [`requirepass ${configString(opts.password)}`, `masterauth ${configString(opts.password)}`] : []),
    ...(opts.extraConfig ?? []),
  ];
}

/** A value for a server.conf line: double-quoted, with quotes, backslashes and unprintable bytes escaped as the server reads them. */
export function configString(value: string): string {
  let out = "";
  for (const b of Buffer.from(value, "utf8")) {
    const c = String.fromCharCode(b);
    if (c === '"' || c === "\\") out += `\\${c}`;
    else if (b < 0x20 || b >= 0x7f) out += `\\x${b.toString(16).padStart(2, "0")}`;
    else out += c;
  }
  return `"${out}"`;
}

/** Starts the server of one node from its config file and returns its pid. */
async function startNode(server: string, nodeDir: string): Promise<number> {
  const pidFile = join(nodeDir, "server.pid");
  rmSync(pidFile, { force: true });
  const r = spawnSync(server, [join(nodeDir, "server.conf")], { encoding: "utf8" });
  if (r.status !== 0) throw new SandboxError(`${basename(server)} in ${nodeDir} failed to start: ${r.stderr || r.stdout}`);
  return waitForPid(pidFile, join(nodeDir, "server.log"));
}

export async function sandboxUp(opts: SandboxUpOptions): Promise<Sandbox> {
  const dir = resolve(opts.dir);
  const server = serverPath(opts.server);
  if (!(opts.nodes >= 1 && opts.nodes <= 1000)) throw new SandboxError(`--nodes must be between 1 and 1000, got ${opts.nodes}`);
  const hosts = opts.hosts?.length ? opts.hosts : ["127.0.0.1"];
  const last = opts.basePort + opts.nodes - 1;
  if (opts.basePort < 1024 || last + 10000 > 65535) {
    throw new SandboxError(`ports ${opts.basePort}-${last} and their bus ports (+10000) must lie within 1024-65535: pick a base port such as 7000`);
  }
  const existing = readSandbox(dir);
  if (existing && existing.nodes.some((n) => currentPids(n).some(isAlive))) {
    throw new SandboxError(`a sandbox is already running in ${dir}: run \`shardform sandbox down --dir ${opts.dir}\` first`);
  }
  const busy: number[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const p = opts.basePort + i;
    const host = hosts[i % hosts.length]!;
    if ((await portInUse(p, host)) || (await portInUse(p + 10000, host))) busy.push(p);
  }
  if (busy.length > 0) throw new SandboxError(`port(s) ${busy.join(", ")} (or their bus port +10000) are in use: pick another --base-port`);

  try {
    makeDirs(dir);
  } catch (err) {
    throw new SandboxError(`${dir} cannot be made (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give another --dir`);
  }
  const tls = opts.tls ? makeTlsFiles(join(dir, "tls"), hosts) : undefined;
  const sandbox: Sandbox = { dir, server, ...(tls ? { tls } : {}), nodes: [] };
  try {
    for (let i = 0; i < opts.nodes; i++) {
      const port = opts.basePort + i;
      const host = hosts[i % hosts.length]!;
      const nodeDir = join(dir, String(port));
      rmSync(nodeDir, { recursive: true, force: true });
      makeDirs(nodeDir);
      const confFile = join(nodeDir, "server.conf");
      // It may hold the password: readable by its owner only, from the moment it exists.
      writeFileSync(confFile, nodeConfig(opts, port, host, nodeDir, tls).join("\n") + "\n", { mode: 0o600 });
      chmodSync(confFile, 0o600);
      const pid = await startNode(server, nodeDir);
      sandbox.nodes.push({ port, pid, dir: nodeDir, ...(host !== "127.0.0.1" ? { host } : {}) });
      writeSandbox(sandbox);
    }
    for (const n of sandbox.nodes) await waitForPort(n.port, n.host ?? "127.0.0.1", n.dir);
  } catch (err) {
    await sandboxDown({ dir, keepFiles: true });
    const warning = outgoingRangeWarning(opts.basePort, opts.nodes);
    if (err instanceof SandboxError && warning) throw new SandboxError(`${err.message}\nNote: ${warning}.`);
    throw err;
  }
  return sandbox;
}

/** Starts a stopped (or killed) node again with its config and nodes.conf, as an operator restarting it would. */
export async function sandboxRestart(dir: string, port: number): Promise<number> {
  const sb = readSandbox(dir);
  const n = sb?.nodes.find((x) => x.port === port);
  if (!sb || !n) throw new SandboxError(`no node on port ${port} in the sandbox ${dir}`);
  if (currentPids(n).some((p) => isAlive(p) && isServer(p))) throw new SandboxError(`the node on port ${port} is still running`);
  n.pid = await startNode(sb.server, n.dir);
  writeSandbox(sb);
  await waitForPort(port, n.host ?? "127.0.0.1", n.dir);
  return n.pid;
}

async function waitForPid(pidFile: string, logFile: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      if (pid > 0) return pid;
    }
    await sleep(25);
  }
  const log = existsSync(logFile) ? readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-5).join("\n") : "(no log)";
  throw new SandboxError(`the server did not write ${pidFile} within 5 s. Last log lines:\n${log}`);
}

/** The kernel's range of ports for outgoing connections (Linux), or null where it cannot be read. */
export function outgoingPortRange(file = "/proc/sys/net/ipv4/ip_local_port_range"): [number, number] | null {
  try {
    const [lo, hi] = readFileSync(file, "utf8").trim().split(/\s+/).map(Number);
    return lo && hi ? [lo, hi] : null;
  } catch {
    return null;
  }
}

/**
 * A warning when some of the ports (client or bus) lie in the kernel's range for outgoing connections:
 * any program's outgoing connection may hold such a port, and a node then fails to listen on it
 * ("Address already in use"), now and then.
 */
export function outgoingRangeWarning(basePort: number, nodes: number, range = outgoingPortRange()): string | null {
  if (!range) return null;
  const [lo, hi] = range;
  const last = basePort + nodes - 1;
  const overlaps = (a: number, b: number): boolean => a <= hi && b >= lo;
  if (!overlaps(basePort, last) && !overlaps(basePort + 10000, last + 10000)) return null;
  return (
    `ports ${basePort}-${last} or their bus ports ${basePort + 10000}-${last + 10000} lie in the kernel's range for outgoing connections (${lo}-${hi}): ` +
    `a node there fails now and then with "Address already in use". Pick a --base-port such that the bus ports stay below ${lo} (e.g. ${Math.max(1024, Math.min(7000, lo - 10000 - nodes))})`
  );
}

function logTail(nodeDir: string): string {
  const f = join(nodeDir, "server.log");
  return existsSync(f) ? readFileSync(f, "utf8").trimEnd().split("\n").slice(-3).join("\n") : "(no log)";
}

async function waitForPort(port: number, host: string, nodeDir?: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await portInUse(port, host)) return;
    await sleep(25);
  }
  throw new SandboxError(`the server on ${host}:${port} did not accept connections within 5 s${nodeDir ? `. Last log lines:\n${logTail(nodeDir)}` : ""}`);
}

function isServer(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmd.includes("redis-server") || cmd.includes("valkey-server") || cmd.includes("server.conf");
  } catch {
    // No /proc (macOS): trust the pidfile we wrote.
    return isAlive(pid);
  }
}

/** The pids a node may run under: the one recorded, and the one in its pidfile (a restart writes a new one). */
function currentPids(n: SandboxNode): number[] {
  const pids = new Set([n.pid]);
  for (const f of ["server.pid", "redis.pid"]) {
    try {
      const p = Number(readFileSync(join(n.dir, f), "utf8").trim());
      if (p > 0) pids.add(p);
    } catch {
      // no pidfile: the recorded pid is all we have
    }
  }
  return [...pids];
}

export interface SandboxDownOptions {
  dir: string;
  /** Keep data directories and logs (default: remove them). */
  keepFiles?: boolean;
}

/** Stops exactly the sandbox's processes (SIGCONT first, for a node a test paused). Returns the ports stopped. */
export async function sandboxDown(opts: SandboxDownOptions): Promise<number[]> {
  const dir = resolve(opts.dir);
  const sb = readSandbox(dir);
  if (!sb) throw new SandboxError(`no sandbox in ${dir} (no sandbox.json): nothing to stop`);
  const stopped: number[] = [];
  const running = sb.nodes.map((n) => ({ n, pids: currentPids(n).filter((p) => isAlive(p) && isServer(p)) }));
  for (const { n, pids } of running) {
    for (const p of pids) {
      process.kill(p, "SIGCONT");
      process.kill(p, "SIGTERM");
    }
    if (pids.length) stopped.push(n.port);
  }
  const left: number[] = [];
  for (const { n, pids } of running) {
    for (const p of pids) {
      for (let i = 0; i < 200 && isAlive(p); i++) await sleep(25);
      if (isAlive(p) && isServer(p)) process.kill(p, "SIGKILL");
      for (let i = 0; i < 40 && isAlive(p); i++) await sleep(25);
      if (isAlive(p)) left.push(n.port);
    }
  }
  if (left.length > 0) throw new SandboxError(`could not stop the node(s) on port(s) ${left.join(", ")}; ${dir} is kept`);
  if (!opts.keepFiles) rmSync(dir, { recursive: true, force: true });
  else rmSync(stateFile(dir), { force: true });
  return stopped;
}
