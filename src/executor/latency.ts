/**
 * --max-latency-ms: a budget for what clients feel while keys move. A client's command waits behind
 * whatever the node is doing: a MIGRATE on a source (the source blocks until the target has restored
 * the batch), a batch of RESTOREs on a target, and everything else pipelined with them. So apply
 * measures exactly that wait: a PING on a connection of its own to every source and target, every few
 * milliseconds (2 on average, at random, so that it cannot keep step with the moves), from a worker thread (so that apply's own work does not count as the servers' wait).
 * Every quarter second the share of the last two seconds' PINGs that waited longer than the budget
 * steers the pace:
 *
 * - over 1% (their 99th percentile is over the budget): fewer MIGRATEs pipelined per source (they run back to back), then fewer keys per
 *   second, then fewer keys per MIGRATE;
 * - under 0.3%: the other way round, up to the --pipeline and --max-keys-per-second limits.
 *
 * The server's own migration (Valkey 9 CLUSTER MIGRATESLOTS) is not paced this way.
 */
import { Worker } from "node:worker_threads";
import { tlsConnectOptions, type Access } from "../redis/connect.js";
import { parseNodeAddr, type NodeAddr } from "../redis/node-key.js";
import { encodeCommands, loginCommands } from "../redis/raw-pipeline.js";
import type { KeyPacer } from "./pool.js";

/** How keys move at a moment: keys per MIGRATE, MIGRATEs pipelined per source, keys per second (0: no limit). */
export interface Pace {
  keys: number;
  inFlight: number;
  rate: number;
}

export interface PaceLimits {
  /** --pipeline: keys per MIGRATE at most. */
  keys: number;
  /** MIGRATEs pipelined per source at most. */
  inFlight: number;
  /** --max-keys-per-second, or 0. */
  rate: number;
}

/** MIGRATEs pipelined per source at most (they run back to back on the source). */
export const MIGRATES_IN_FLIGHT = 16;

/** The slowest pace: it still moves keys, so that an apply on nodes slower than the budget ends. */
export const SLOWEST: Pace = { keys: 10, inFlight: 1, rate: 500 };
/** Where the governor starts: one MIGRATE at a time, at a moderate rate; it speeds up within a few seconds. */
const FIRST_RATE = 20_000;
/** A rate this far above what moves is no limit; the governor does not go higher. */
const MAX_RATE = 2_000_000;

/** The pace a governed apply starts at. */
export function firstPace(limits: PaceLimits): Pace {
  return { keys: limits.keys, inFlight: 1, rate: limits.rate > 0 ? Math.min(limits.rate, FIRST_RATE) : FIRST_RATE };
}

/** Over the budget: more than 1% of the last PINGs waited longer than it (the 99th percentile is above it). */
const OVER = 0.01;
/** Under 0.3% of them: there is room to speed up. */
const ROOM = 0.003;

/**
 * The next pace, given the share of the PINGs of the last seconds (every moving node's together, as a
 * client sees them) that waited longer than the budget. Over 1% (their 99th percentile is above the
 * budget): halve the MIGRATEs in flight, else cut the rate by 30%, and at the slowest rate halve the
 * keys per MIGRATE. Under 0.3%: the reverse, one step at a time (keys per MIGRATE first, then the
 * rate by half, then one more MIGRATE in flight). In between: hold.
 */
export function nextPace(p: Pace, overShare: number, limits: PaceLimits): Pace {
  const maxRate = limits.rate > 0 ? limits.rate : MAX_RATE;
  if (overShare > OVER) {
    if (p.inFlight > 1) return { ...p, inFlight: Math.max(1, Math.floor(p.inFlight / 2)) };
    if (p.rate > SLOWEST.rate) return { ...p, rate: Math.max(SLOWEST.rate, Math.round(p.rate * 0.7)) };
    return { ...p, keys: Math.max(SLOWEST.keys, Math.floor(p.keys / 2)) };
  }
  if (overShare < ROOM) {
    if (p.keys < limits.keys) return { ...p, keys: Math.min(limits.keys, Math.ceil(p.keys * 1.5)) };
    if (p.rate < maxRate) return { ...p, rate: Math.min(maxRate, Math.round(p.rate * 1.5)) };
    if (p.inFlight < limits.inFlight) return { ...p, inFlight: p.inFlight + 1 };
  }
  return p;
}

function histogramQuantile(h: Uint32Array, total: number, q: number): number {
  let seen = 0;
  for (let i = 0; i < h.length; i++) {
    seen += h[i]!;
    if (seen > q * total) return (i + 1) / 20;
  }
  return 0;
}

/** What the governor saw, for the end of apply. */
export interface LatencySummary {
  budgetMs: number;
  /** PINGs answered. */
  probes: number;
  /** The 99th percentile of every PING's wait over the whole move, worst node. */
  p99Ms: number;
  maxMs: number;
  /** The fastest and the last pace it chose. */
  topRate: number;
  lastRate: number;
  /** Quarter seconds in which more than 1% of the last PINGs waited longer than the budget. */
  overTicks: number;
  ticks: number;
}

const TICK_MS = 250;
/** The pause between a PING's answer and the next PING, per node. */
const PROBE_EVERY_MS = 2;

/** A PING's wait, and the waits of the PINGs that would have gone out during it, one interval apart. */
export function withHidden(ms: number): number[] {
  const out = [ms];
  for (let missed = ms - PROBE_EVERY_MS; missed > PROBE_EVERY_MS && out.length < 10_000; missed -= PROBE_EVERY_MS) out.push(missed);
  return out;
}
const WINDOW_MS = 2000;

/**
 * The PINGs, in a worker thread: plain RESP on a socket per node (AUTH first when there are
 * credentials; TLS when the nodes use it), one PING every `everyMs`, each wait posted in batches.
 * It is code text (eval), so that it runs the same from the sources and from the build.
 */
const PROBE_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
const tls = require("node:tls");
const { nodes, login, ping, tlsOptions, everyMs } = workerData;
let stopped = false;
const batch = new Map();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function open(node) {
  return new Promise((resolve, reject) => {
    const opts = { host: node.host, port: node.port };
    const s = tlsOptions ? tls.connect({ ...opts, ...tlsOptions, ...(tlsOptions.rejectUnauthorized === false ? { checkServerIdentity: () => undefined } : {}) }) : net.connect(opts);
    s.setNoDelay(true);
    const t = setTimeout(() => { s.destroy(); reject(new Error("connect timeout")); }, 3000);
    s.once(tlsOptions ? "secureConnect" : "connect", () => { clearTimeout(t); resolve(s); });
    s.once("error", (e) => { clearTimeout(t); reject(e); });
  });
}
function request(s, data) {
  return new Promise((resolve, reject) => {
    let got = "";
    const onData = (d) => { got += d.toString("latin1"); const i = got.indexOf("\\r\\n"); if (i >= 0) { done(); got.startsWith("-") ? reject(new Error(got.slice(1, i))) : resolve(); } };
    const onErr = (e) => { done(); reject(e || new Error("closed")); };
    const done = () => { s.off("data", onData); s.off("error", onErr); s.off("close", onErr); };
    s.on("data", onData); s.once("error", onErr); s.once("close", onErr);
    s.write(data);
  });
}
async function run(node) {
  while (!stopped) {
    let s;
    try {
      s = await open(node);
      if (login) await request(s, login);
      while (!stopped) {
        const t0 = performance.now();
        await request(s, ping);
        const ms = performance.now() - t0;
        const b = batch.get(node.addr); if (b) b.push(ms); else batch.set(node.addr, [ms]);
        await sleep(everyMs * (0.5 + Math.random()));
      }
    } catch { await sleep(1000); } finally { if (s) s.destroy(); }
  }
}
parentPort.on("message", (m) => { if (m === "stop") { stopped = true; parentPort.close(); } });
const timer = setInterval(() => { if (batch.size) { parentPort.postMessage(Object.fromEntries(batch)); batch.clear(); } }, ${TICK_MS});
for (const n of nodes) run(n);
parentPort.once("close", () => clearInterval(timer));
`;

/**
 * Watches the wait of a PING on every node that keys move from or to, and sets the pace of the key
 * moves (see nextPace): the pacer's rate, and the burst that `pace()` hands the movers.
 */
export class LatencyGovernor {
  readonly budgetMs: number;
  private readonly limits: PaceLimits;
  private readonly pacer: KeyPacer;
  private current: Pace;
  private worker: Worker | null = null;
  private readonly recent = new Map<string, { at: number; ms: number }[]>();
  /** Every PING's wait over the whole move, in 0.05 ms buckets (the last one: 1 s and more). */
  private readonly histogram = new Uint32Array(20_001);
  private probes = 0;
  private topRate = 0;
  private overTicks = 0;
  private ticks = 0;
  private maxMs = 0;

  constructor(budgetMs: number, limits: PaceLimits, pacer: KeyPacer) {
    this.budgetMs = budgetMs;
    this.limits = limits;
    this.pacer = pacer;
    this.current = firstPace(limits);
    this.pacer.setLimit(this.current.rate);
    this.topRate = this.current.rate;
  }

  /** Starts the PINGs on these nodes. */
  start(addrs: readonly NodeAddr[], access: Access): void {
    const nodes = [...new Set(addrs)].map((addr) => ({ addr, ...parseNodeAddr(addr) }));
    // The options apply's own connections use; a function cannot reach the worker: it puts back
    // checkServerIdentity itself when verification is off.
    const { checkServerIdentity: _, ...tlsOptions } = access.tls ? tlsConnectOptions(access.tls) : {};
    // The commands as RESP bytes, encoded here as for every raw connection: AUTH (one reply) when there is a password, then PINGs.
    const login = loginCommands(access.credentials, undefined);
    const workerData = { nodes, login: login.length > 0 ? encodeCommands(login) : null, ping: encodeCommands([["PING"]]), tlsOptions: access.tls ? tlsOptions : null, everyMs: PROBE_EVERY_MS };
    this.worker = new Worker(PROBE_WORKER, { eval: true, workerData });
    this.worker.unref();
    this.worker.on("message", (m: Record<string, number[]>) => this.tick(m));
    this.worker.on("error", () => {}); // a probe that fails leaves the pace where it is
  }

  /** The pace now: keys per MIGRATE and MIGRATEs in flight per source (the rate is the pacer's). */
  pace(): Pace {
    return this.current;
  }

  private tick(samples: Record<string, number[]>): void {
    const now = performance.now();
    for (const [addr, list] of Object.entries(samples)) {
      const r = this.recent.get(addr) ?? [];
      // A PING goes out PROBE_EVERY_MS after the last answer, so a long wait hides the PINGs a client
      // would have sent meanwhile; they are counted as it would have seen them (each one interval less).
      for (const ms of list.flatMap(withHidden)) {
        r.push({ at: now, ms });
        this.histogram[Math.min(this.histogram.length - 1, Math.floor(ms * 20))]!++;
        this.probes++;
        if (ms > this.maxMs) this.maxMs = ms;
      }
      while (r.length > 0 && r[0]!.at < now - WINDOW_MS) r.shift();
      this.recent.set(addr, r);
    }
    let total = 0;
    let over = 0;
    for (const r of this.recent.values()) {
      total += r.length;
      for (const x of r) if (x.ms > this.budgetMs) over++;
    }
    if (total === 0) return;
    const share = over / total;
    this.ticks++;
    if (share > OVER) this.overTicks++;
    this.current = nextPace(this.current, share, this.limits);
    this.pacer.setLimit(this.current.rate);
    if (this.current.rate > this.topRate) this.topRate = this.current.rate;
  }

  async stop(): Promise<LatencySummary> {
    const w = this.worker;
    this.worker = null;
    if (w) {
      w.postMessage("stop");
      await w.terminate();
    }
    return {
      budgetMs: this.budgetMs,
      probes: this.probes,
      p99Ms: histogramQuantile(this.histogram, this.probes, 0.99),
      maxMs: this.maxMs,
      topRate: this.topRate,
      lastRate: this.current.rate,
      overTicks: this.overTicks,
      ticks: this.ticks,
    };
  }
}
