/**
 * `npm run bench`: times shardform against redis-cli on the same data in the same run and prints a
 * table of medians with ratios. Not part of `npm test` (it takes minutes and its figures are noisy).
 *
 *   scale-out  3 masters with N keys + an empty 4th master -> 4 balanced masters
 *              shardform apply SPEC  vs  redis-cli --cluster rebalance --cluster-use-empty-masters (pipeline 10/100/1000)
 *              vs  the same moves by the bare protocol with no checks (bench/ceiling.ts: the ceiling)
 *   scale-in   4 balanced masters with N keys -> drain the 4th and remove it
 *              shardform apply SPEC  vs  redis-cli --cluster rebalance --cluster-weight <4th>=0 + del-node
 *              vs  the bare protocol (moves only)
 *   populate   N keys into 3 masters: shardform populate  vs  redis-cli --pipe (one per master, in parallel)
 *   planner    shardform plan --observed on synthetic snapshots of 200, 1000 and 2000 masters (a replica each)
 *   create     3 shards x 1 replica, and 30 x 1 (60 nodes), from bare nodes: shardform apply SPEC  vs
 *              redis-cli --cluster create --cluster-replicas 1 + the wait until every member agrees
 *   latency    a live client (ioredis Cluster, a fixed rate of GET/SET) during the 3->4 scale-out: its
 *              p50/p99/max latency and errors with no move, at full speed, at --max-keys-per-second,
 *              and at --max-latency-ms of 2x and 10x the no-move p99
 *   growth     (only with --only growth: about 15 minutes) for 3, 30 and 100 shards with a replica each
 *              (6, 60, 200 nodes, and 2 spare): create from bare nodes, write --keys, plan the unchanged
 *              spec, scale out by one shard with its replica; shardform  vs  redis-cli create / add-node
 *              + rebalance (pipeline 100)
 *   valkey9    the scale-out on Valkey 9.1.2 (.servers/, from scripts/servers.sh): shardform with the server's
 *              own slot migration  vs  shardform --migration keys  vs  redis-cli rebalance
 *   skewed     4 masters with equal slot counts and skewed data (bench/skewed.ts): shardform apply of a
 *              spec with balance.by: memory  vs  redis-cli --cluster rebalance; the deviation by memory
 *              after (measured exactly), bytes and keys moved, shardform's lower bound, and the time
 *
 * Every scale-out and scale-in run ends with the checks of the apply tests (every key back with its
 * value, all views agree, no open slot, 16384 slots covered); a run that fails them fails the bench.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { observeCluster } from "../src/observe/observe.js";
import { keysByMaster, populate, testKey, testValue } from "../src/testdata/populate.js";
import { parseSpec } from "../src/spec/load.js";
import { planSteps } from "../src/planner/plan.js";
import { makePlan } from "../src/plan/make.js";
import { NodeClient } from "../src/redis/connect.js";
import { liveClient, writeStallProbe, type LatencyReport } from "./client.js";
import { ROOT, endChecks, median, nodeId, redisCli, shardform, startNodes, timed, waitConsistent, type Timed } from "./lib.js";
import { syntheticCluster } from "./synthetic.js";
import { bareMoves, planMoves } from "./ceiling.js";
import { writeSkewed } from "./skewed.js";
import { measureLoad } from "../src/observe/load.js";
import { SLOT_COUNT, expandRanges } from "../src/slots.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    keys: { type: "string", default: "1000000" },
    // Nodes and their bus ports (+10000) stay below 32768, where the kernel picks outgoing ports.
    "base-port": { type: "string", default: "19000" },
    only: { type: "string", default: "populate,scale-out,scale-in,planner,create,latency,skewed,valkey9" },
    "skewed-keys": { type: "string", default: "200000" },
    "latency-rate": { type: "string", default: "2000" },
    "growth-shards": { type: "string", default: "3,30,100" },
    "latency-limit": { type: "string", default: "50000" },
    "redis-cli-pipelines": { type: "string", default: "10,100,1000" },
    "shardform-args": { type: "string", default: "" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  process.stdout.write(
    "npm run bench -- [--runs 3] [--keys 1000000] [--base-port 19000] [--only populate,scale-out,scale-in,planner,create,latency,skewed,valkey9] [--skewed-keys 200000]\n" +
      "                 [--redis-cli-pipelines 10,100,1000] [--shardform-args '--parallelism 4'] [--latency-rate 2000] [--latency-limit 50000]\n" +
      "                 [--only growth --growth-shards 3,30,100 --keys 200000]\n",
  );
  process.exit(0);
}
const RUNS = Number(args.runs);
const KEYS = Number(args.keys);
const PORT = Number(args["base-port"]);
const ONLY = new Set(args.only.split(","));
const PIPELINES = args["redis-cli-pipelines"].split(",").map(Number);
const EXTRA = args["shardform-args"].split(" ").filter(Boolean);
const work = mkdtempSync(join(tmpdir(), "shardform-bench-"));

const log = (msg: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

interface Row {
  scenario: string;
  tool: string;
  secs: number[];
  peakMb: number[];
  units: number;
  unit: string;
  reference?: boolean;
}
const rows: Row[] = [];
/** Lines printed under the table. */
const notes: string[] = [];
function record(scenario: string, tool: string, units: number, unit: string, t: { secs: number; peakMb: number | null }, reference = false): void {
  let r = rows.find((x) => x.scenario === scenario && x.tool === tool);
  if (!r) rows.push((r = { scenario, tool, secs: [], peakMb: [], units, unit, reference }));
  r.secs.push(t.secs);
  if (t.peakMb !== null) r.peakMb.push(t.peakMb);
}

function specYaml(masters: string[]): string {
  return ["cluster:", `  seeds: ["${masters[0]}"]`, "shards:", ...masters.map((m) => `  - master: ${m}`), ""].join("\n");
}

async function loadKeys(seed: string): Promise<void> {
  const o = await observeCluster({ seeds: [seed] });
  await populate(o, { keys: KEYS });
}

// ---- populate -------------------------------------------------------------------------------

async function benchPopulate(): Promise<void> {
  const c = await startNodes(PORT, 3);
  try {
    redisCli(["--cluster", "create", ...c.addrs, "--cluster-yes"]);
    await waitConsistent(c.addrs);
    // The same keys and values as `shardform populate`, as RESP, one file per master (not timed).
    const perMaster = keysByMaster(await observeCluster({ seeds: [c.addrs[0]!] }), KEYS, "key:");
    const files = [...perMaster].map(([addr, ids], k) => {
      const file = join(work, `pipe-${k}.resp`);
      const parts: string[] = [];
      for (const i of ids) {
        const key = testKey("key:", i);
        const value = testValue(i, 16);
        parts.push(`*3\r\n$3\r\nSET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${Buffer.byteLength(value)}\r\n${value}\r\n`);
      }
      writeFileSync(file, parts.join(""));
      return { addr, file };
    });
    const flush = async (): Promise<void> => {
      for (const a of c.addrs) {
        const n = await NodeClient.connect(a);
        await n.call("flushall");
        await n.close();
      }
    };
    const dbsize = async (): Promise<number> => {
      let total = 0;
      for (const a of c.addrs) {
        const n = await NodeClient.connect(a);
        total += Number(await n.call("dbsize"));
        await n.close();
      }
      return total;
    };
    for (let r = 1; r <= RUNS; r++) {
      await flush();
      const s = await shardform(["populate", "--seed", c.addrs[0]!, "--keys", String(KEYS)]);
      if ((await dbsize()) !== KEYS) throw new Error("shardform populate did not write every key");
      record("populate", "shardform populate", KEYS, "keys", s);
      await flush();
      const t0 = performance.now();
      await Promise.all(files.map(({ addr, file }) => timed("redis-cli", ["-p", addr.split(":")[1]!, "--pipe"], { stdinFile: file })));
      const pipe = { secs: (performance.now() - t0) / 1000, peakMb: null };
      if ((await dbsize()) !== KEYS) throw new Error("redis-cli --pipe did not write every key");
      record("populate", "redis-cli --pipe x3", KEYS, "keys", pipe, true);
      log(`populate run ${r}: shardform ${s.secs.toFixed(2)} s, redis-cli --pipe ${pipe.secs.toFixed(2)} s`);
    }
  } finally {
    await c.stop();
  }
}

// ---- scale-out ------------------------------------------------------------------------------

/** The scale-out's start: 3 masters holding the keys (made by redis-cli) and an empty 4th member. */
async function threeMastersAndAnEmptyOne(addrs: string[]): Promise<void> {
  redisCli(["--cluster", "create", ...addrs.slice(0, 3), "--cluster-yes"]);
  await waitConsistent(addrs.slice(0, 3));
  await loadKeys(addrs[0]!);
  redisCli(["--cluster", "add-node", addrs[3]!, addrs[0]!]);
  await waitConsistent(addrs);
}

type Mover = { tool: string; reference: boolean; run: (addrs: string[]) => Promise<Timed> };

async function scaleOutOnce(mover: Mover, scenario = "scale-out 3->4", server?: string): Promise<void> {
  const c = await startNodes(PORT, 4, server);
  try {
    await threeMastersAndAnEmptyOne(c.addrs);
    const t = await mover.run(c.addrs);
    const checked = await endChecks(c.addrs[0]!, 4, KEYS);
    record(scenario, mover.tool, KEYS / 4, "keys", t, mover.reference);
    log(`${scenario} ${mover.tool}: ${t.secs.toFixed(2)} s, ${t.peakMb?.toFixed(0) ?? "?"} MB; ${checked}`);
    const phases = /^Time: (.*)$/m.exec(t.stderr)?.[1];
    if (phases) log(`  where the time went: ${phases}`);
  } finally {
    await c.stop();
  }
}

const shardformApply = (masters: (addrs: string[]) => string[], extra: string[] = []) => async (addrs: string[]): Promise<Timed> => {
  const spec = join(work, "cluster.yaml");
  writeFileSync(spec, specYaml(masters(addrs)));
  return shardform(["apply", spec, "--auto-approve", "--state-dir", work, ...EXTRA, ...extra]);
};

/**
 * The ceiling (bench/ceiling.ts): the slot moves of shardform's plan for the same spec (planned first,
 * not timed), made with the bare protocol and no checks. Only the moves are timed; for a scale-in the
 * drained master is then removed by `redis-cli --cluster del-node`, not timed.
 */
const bareProtocol = (masters: (addrs: string[]) => string[]) => async (addrs: string[]): Promise<Timed> => {
  const spec = join(work, "cluster.yaml");
  const planFile = join(work, "bare.plan.json");
  writeFileSync(spec, specYaml(masters(addrs)));
  await shardform(["plan", spec, "--out", planFile]); // throws when it fails
  const live = (await observeCluster({ seeds: [addrs[0]!] })).nodes.filter((n) => n.role === "master").map((n) => n.addr);
  const secs = await bareMoves(planMoves(planFile), live);
  for (const gone of live.filter((a) => !masters(addrs).includes(a))) {
    await waitConsistent(addrs);
    redisCli(["--cluster", "del-node", addrs[0]!, await nodeId(gone)]);
  }
  return { secs, peakMb: null, stdout: "", stderr: "" };
};
const BARE = "bare protocol, no checks (ceiling, moves only)";

async function benchScaleOut(): Promise<void> {
  const movers: Mover[] = [
    { tool: `shardform apply ${EXTRA.join(" ")}`.trim(), reference: false, run: shardformApply((a) => a) },
    { tool: BARE, reference: true, run: bareProtocol((a) => a) },
    ...PIPELINES.map((p) => ({
      tool: `redis-cli rebalance pipeline ${p}`,
      reference: true,
      run: (addrs: string[]) => timed("redis-cli", ["--cluster", "rebalance", addrs[0]!, "--cluster-use-empty-masters", "--cluster-pipeline", String(p)]),
    })),
  ];
  for (let r = 1; r <= RUNS; r++) for (const m of movers) await scaleOutOnce(m);
}

// ---- valkey9: the same scale-out on Valkey 9, atomic slot migration against key by key -----------

/** Slots per server-side migration in the bench's second atomic row: smaller migrations, shorter pauses? */
const ATOMIC_WINDOW = 512;

async function benchValkey9(): Promise<void> {
  const server = join(ROOT, ".servers/valkey-9.1.2/valkey-server");
  if (!existsSync(server)) {
    notes.push(`valkey9: skipped, ${server} not found (run \`bash scripts/servers.sh\`)`);
    return;
  }
  const movers: Mover[] = [
    { tool: "shardform apply (atomic: CLUSTER MIGRATESLOTS)", reference: false, run: shardformApply((a) => a) },
    { tool: `shardform apply (atomic, --atomic-window ${ATOMIC_WINDOW})`, reference: true, run: shardformApply((a) => a, ["--atomic-window", String(ATOMIC_WINDOW)]) },
    { tool: "shardform apply --migration keys", reference: true, run: shardformApply((a) => a, ["--migration", "keys"]) },
    ...PIPELINES.map((p) => ({
      tool: `redis-cli rebalance pipeline ${p}`,
      reference: true,
      run: (addrs: string[]) => timed("redis-cli", ["--cluster", "rebalance", addrs[0]!, "--cluster-use-empty-masters", "--cluster-pipeline", String(p)]),
    })),
  ];
  for (let r = 1; r <= RUNS; r++) for (const m of movers) await scaleOutOnce(m, "Valkey 9.1.2 scale-out 3->4", server);
  // What a live client sees during each, on the same servers.
  await benchLatency(server, "Valkey 9.1.2: ");
}

// ---- scale-in -------------------------------------------------------------------------------

async function scaleInOnce(mover: Mover): Promise<void> {
  const c = await startNodes(PORT, 4);
  try {
    redisCli(["--cluster", "create", ...c.addrs, "--cluster-yes"]);
    await waitConsistent(c.addrs);
    await loadKeys(c.addrs[0]!);
    const t = await mover.run(c.addrs);
    const checked = await endChecks(c.addrs[0]!, 3, KEYS);
    record("scale-in 4->3", mover.tool, KEYS / 4, "keys", t, mover.reference);
    log(`scale-in ${mover.tool}: ${t.secs.toFixed(2)} s, ${t.peakMb?.toFixed(0) ?? "?"} MB; ${checked}`);
    const phases = /^Time: (.*)$/m.exec(t.stderr)?.[1];
    if (phases) log(`  where the time went: ${phases}`);
  } finally {
    await c.stop();
  }
}

async function benchScaleIn(): Promise<void> {
  const movers: Mover[] = [
    { tool: `shardform apply ${EXTRA.join(" ")}`.trim(), reference: false, run: shardformApply((a) => a.slice(0, 3)) },
    { tool: BARE, reference: true, run: bareProtocol((a) => a.slice(0, 3)) },
    ...PIPELINES.map((p) => ({
      tool: `redis-cli rebalance+del-node pipeline ${p}`,
      reference: true,
      run: async (addrs: string[]): Promise<Timed> => {
        const id = await nodeId(addrs[3]!);
        const a = await timed("redis-cli", ["--cluster", "rebalance", addrs[0]!, "--cluster-weight", `${id}=0`, "--cluster-pipeline", String(p)]);
        const b = await timed("redis-cli", ["--cluster", "del-node", addrs[0]!, id]);
        const peakMb = a.peakMb === null || b.peakMb === null ? null : Math.max(a.peakMb, b.peakMb);
        return { secs: a.secs + b.secs, peakMb, stdout: a.stdout + b.stdout, stderr: a.stderr + b.stderr };
      },
    })),
  ];
  for (let r = 1; r <= RUNS; r++) for (const m of movers) await scaleInOnce(m);
}

// ---- planner --------------------------------------------------------------------------------

async function benchPlanner(): Promise<void> {
  const perNode: { nodes: number; ms: number }[] = [];
  for (const masters of [200, 1000, 2000]) {
    const nodes = 2 * masters;
    const { observed, specYaml: yaml } = syntheticCluster(masters, Math.max(1, Math.round(masters / 10)));
    const snap = join(work, `snapshot-${nodes}.json`);
    const specFile = join(work, `spec-${nodes}.yaml`);
    writeFileSync(snap, JSON.stringify(observed));
    writeFileSync(specFile, yaml);
    const inProcess: number[] = [];
    for (let r = 1; r <= RUNS; r++) {
      const t = await shardform(["plan", specFile, "--observed", snap, "--out", join(work, `plan-${nodes}.json`)]);
      record(`planner ${masters} masters (${nodes} nodes)`, "shardform plan --observed (CLI)", nodes, "nodes", t);
      const t0 = performance.now();
      const spec = parseSpec(yaml, specFile);
      const { steps, notes } = planSteps(spec, observed);
      makePlan({ spec, specFile, observed, steps, notes, toolVersion: "bench" });
      inProcess.push(performance.now() - t0);
    }
    record(`planner ${masters} masters (${nodes} nodes)`, "planSteps + makePlan (in process)", nodes, "nodes", { secs: median(inProcess) / 1000, peakMb: null });
    perNode.push({ nodes, ms: median(inProcess) });
    log(`planner ${nodes} nodes: in process ${median(inProcess).toFixed(0)} ms`);
  }
  const base = perNode[0]!;
  for (const p of perNode) {
    notes.push(`planner in process: ${p.nodes} nodes in ${p.ms.toFixed(0)} ms, ${(p.ms / base.ms).toFixed(1)}x the time of ${base.nodes} nodes for ${(p.nodes / base.nodes).toFixed(0)}x the nodes`);
  }
}

// ---- create ---------------------------------------------------------------------------------

async function createOnce(masters: number, label: string, tool: "shardform" | "redis-cli"): Promise<void> {
  const n = masters * 2;
  const c = await startNodes(PORT, n);
  try {
    let t: Timed;
    if (tool === "shardform") {
      const spec = join(work, `create-${n}.yaml`);
      const lines = ["cluster:", `  seeds: ["${c.addrs[0]}"]`, "shards:"];
      for (let i = 0; i < masters; i++) lines.push(`  - master: ${c.addrs[i]}`, `    replicas: [${c.addrs[masters + i]}]`);
      writeFileSync(spec, lines.join("\n") + "\n");
      t = await shardform(["apply", spec, "--auto-approve", "--state-dir", work, ...EXTRA]);
      await waitConsistent(c.addrs); // apply ends once every member agrees: this finds it so at once
    } else {
      const t0 = performance.now();
      const r = await timed("redis-cli", ["--cluster", "create", ...c.addrs, "--cluster-replicas", "1", "--cluster-yes"]);
      await waitConsistent(c.addrs, 120_000);
      t = { ...r, secs: (performance.now() - t0) / 1000 };
    }
    const reference = tool === "redis-cli";
    record(label, reference ? "redis-cli --cluster create + wait until every member agrees" : `shardform apply ${EXTRA.join(" ")}`.trim(), n, "nodes", t, reference);
    log(`${label} ${tool}: ${t.secs.toFixed(2)} s`);
  } finally {
    await c.stop();
  }
}

async function benchCreate(): Promise<void> {
  for (let r = 1; r <= RUNS; r++) {
    for (const tool of ["shardform", "redis-cli"] as const) await createOnce(3, "create 3x1 (6 nodes)", tool);
    for (const tool of ["shardform", "redis-cli"] as const) await createOnce(30, "create 30x1 (60 nodes)", tool);
  }
}

// ---- growth: how each cost grows with the number of nodes -------------------------------------

const growth: { shards: number; tool: string; create: number; plan: number | null; scaleOut: number; check: string }[] = [];

/** One size, one tool: create `shards` shards with a replica each from bare nodes, write the keys, time a plan of the unchanged spec (shardform), then scale out by one shard with its replica. */
async function growthOnce(shards: number, tool: "shardform" | "redis-cli", keys: number): Promise<void> {
  // Redis's default cluster-node-timeout: at the sandbox's 5 s, 200 nodes' gossip saturates this 2-core machine.
  const c = await startNodes(PORT, 2 * shards + 2, undefined, 15_000);
  try {
    const pair = (i: number): [string, string] => [c.addrs[2 * i]!, c.addrs[2 * i + 1]!];
    const spec = (k: number): string => {
      const f = join(work, `growth-${shards}-${k}.yaml`);
      const lines = ["cluster:", `  seeds: ["${c.addrs[0]}"]`, "shards:"];
      for (let i = 0; i < k; i++) lines.push(`  - master: ${pair(i)[0]}`, `    replicas: [${pair(i)[1]}]`);
      writeFileSync(f, lines.join("\n") + "\n");
      return f;
    };
    const initial = c.addrs.slice(0, 2 * shards);
    let create: number;
    let plan: number | null = null;
    let scaleOut: number;
    if (tool === "shardform") {
      create = (await shardform(["apply", spec(shards), "--auto-approve", "--state-dir", work, ...EXTRA])).secs;
      await waitConsistent(initial, 120_000);
      await loadKeys(c.addrs[0]!);
      plan = (await shardform(["plan", spec(shards)])).secs;
      scaleOut = (await shardform(["apply", spec(shards + 1), "--auto-approve", "--state-dir", work, ...EXTRA])).secs;
    } else {
      // redis-cli pairs masters and replicas itself: the first half of the addresses become masters.
      const ordered = [...Array.from({ length: shards }, (_, i) => pair(i)[0]), ...Array.from({ length: shards }, (_, i) => pair(i)[1])];
      const t0 = performance.now();
      await timed("redis-cli", ["--cluster", "create", ...ordered, "--cluster-replicas", "1", "--cluster-yes"]);
      await waitConsistent(initial, 300_000);
      create = (performance.now() - t0) / 1000;
      await loadKeys(c.addrs[0]!);
      const [m, r] = pair(shards);
      const t1 = performance.now();
      redisCli(["--cluster", "add-node", m, c.addrs[0]!]);
      await waitConsistent([...initial, m], 300_000);
      redisCli(["--cluster", "add-node", r, c.addrs[0]!, "--cluster-slave", "--cluster-master-id", await nodeId(m)]);
      await timed("redis-cli", ["--cluster", "rebalance", c.addrs[0]!, "--cluster-use-empty-masters", "--cluster-pipeline", "100", "--cluster-yes"]);
      await waitConsistent(c.addrs, 300_000);
      scaleOut = (performance.now() - t1) / 1000;
    }
    const check = await endChecks(c.addrs[0]!, 2 * shards + 2, keys);
    growth.push({ shards, tool, create, plan, scaleOut, check });
    log(`growth ${2 * shards} nodes ${tool}: create ${create.toFixed(2)} s, ${plan === null ? "" : `plan ${plan.toFixed(2)} s, `}scale-out by one shard ${scaleOut.toFixed(2)} s; ${check}`);
  } finally {
    await c.stop();
  }
}

async function benchGrowth(): Promise<void> {
  for (const shards of args["growth-shards"].split(",").map(Number)) {
    for (const tool of ["shardform", "redis-cli"] as const) await growthOnce(shards, tool, KEYS);
  }
}

function growthTable(): string {
  const out = [
    `| nodes | shardform create s | redis-cli create + agree s | shardform plan (no changes) s | shardform scale-out +1 shard s | redis-cli add-node x2 + rebalance (pipeline 100) s |`,
    "|---:|---:|---:|---:|---:|---:|",
  ];
  for (const shards of [...new Set(growth.map((g) => g.shards))]) {
    const sf = growth.find((g) => g.shards === shards && g.tool === "shardform");
    const rc = growth.find((g) => g.shards === shards && g.tool === "redis-cli");
    const f = (x: number | null | undefined): string => (x === null || x === undefined ? "" : x.toFixed(2));
    out.push(`| ${2 * shards} | ${f(sf?.create)} | ${f(rc?.create)} | ${f(sf?.plan)} | ${f(sf?.scaleOut)} | ${f(rc?.scaleOut)} |`);
  }
  return out.join("\n");
}

// ---- latency --------------------------------------------------------------------------------

const latency: { mode: string; applySecs: number | null; report: LatencyReport; stallMs: number }[] = [];

async function benchLatency(server?: string, label = ""): Promise<void> {
  const rate = Number(args["latency-rate"]);
  const limit = Number(args["latency-limit"]);
  const modes: { mode: string; extra: string[] | null }[] = server
    ? [
        { mode: `${label}no move (baseline, 5 s)`, extra: null },
        { mode: `${label}scale-out, atomic (CLUSTER MIGRATESLOTS)`, extra: [] },
        { mode: `${label}scale-out, atomic, --atomic-window ${ATOMIC_WINDOW}`, extra: ["--atomic-window", String(ATOMIC_WINDOW)] },
        { mode: `${label}scale-out, --migration keys`, extra: ["--migration", "keys"] },
      ]
    : [
        { mode: "no move (baseline, 5 s)", extra: null },
        { mode: "scale-out at full speed", extra: [] },
        { mode: `scale-out at --max-keys-per-second ${limit}`, extra: ["--max-keys-per-second", String(limit)] },
        // Budgets of 2x and 10x the baseline's p99, as measured in this run (filled in below).
        { mode: "budget 2", extra: ["--max-latency-ms"] },
        { mode: "budget 10", extra: ["--max-latency-ms"] },
      ];
  for (const m of modes) {
    if (m.extra?.[0] === "--max-latency-ms") {
      const times = Number(m.mode.split(" ")[1]);
      const budget = Math.max(0.1, times * (latency.filter((l) => l.applySecs === null).at(-1)?.report.p99 ?? 1)).toFixed(2);
      m.extra = ["--max-latency-ms", budget];
      m.mode = `scale-out at --max-latency-ms ${budget} (${times}x the baseline's p99)`;
    }
    const c = await startNodes(PORT, 4, server);
    try {
      await threeMastersAndAnEmptyOne(c.addrs);
      const client = await liveClient(c.addrs[0]!, rate, KEYS);
      const probe = await writeStallProbe(c.addrs[0]!);
      let applySecs: number | null = null;
      try {
        if (m.extra === null) await new Promise((r) => setTimeout(r, 5000));
        else {
          const spec = join(work, "latency.yaml");
          writeFileSync(spec, specYaml(c.addrs));
          const t = await shardform(["apply", spec, "--auto-approve", "--state-dir", work, ...m.extra]);
          applySecs = t.secs;
          const governed = /^Latency: (.*)$/m.exec(t.stderr)?.[1];
          if (governed) log(`latency ${m.mode}: apply says ${governed}`);
        }
      } finally {
        const report = await client.stop();
        latency.push({ mode: m.mode, applySecs, report, stallMs: await probe.stop() });
      }
      if (m.extra !== null) log(`latency ${m.mode}: ${await endChecks(c.addrs[0]!, 4, KEYS)}`);
      const last = latency.at(-1)!.report;
      log(`latency ${m.mode}: ${last.requests} requests, p50 ${last.p50.toFixed(2)} ms, p99 ${last.p99.toFixed(2)} ms, max ${last.max.toFixed(1)} ms, ${last.errors} errors; longest write to an unmoved slot of a source ${latency.at(-1)!.stallMs.toFixed(1)} ms`);
    } finally {
      await c.stop();
    }
  }
}

function latencyTable(): string {
  const out = ["| live client during | apply s | requests | p50 ms | p99 ms | max ms | errors | longest write, unmoved slot of a source ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"];
  for (const l of latency) {
    const r = l.report;
    out.push(`| ${l.mode} | ${l.applySecs === null ? "" : l.applySecs.toFixed(2)} | ${r.requests} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(1)} | ${r.errors} | ${l.stallMs.toFixed(1)} |`);
  }
  return out.join("\n");
}

// ---- table ----------------------------------------------------------------------------------

function table(): string {
  const out = ["| scenario | tool | median s | rate | runs | peak MB | redis-cli / shardform |", "|---|---|---:|---:|---:|---:|---|"];
  for (const r of rows) {
    const s = median(r.secs);
    const mine = rows.find((x) => x.scenario === r.scenario && !x.reference && x.tool.startsWith("shardform"));
    const ratio = r.reference && mine ? `${(s / median(mine.secs)).toFixed(2)}x` : "";
    const rate = r.unit === "keys" ? `${Math.round(r.units / s / 1000)}k keys/s` : "";
    const peak = r.peakMb.length ? Math.max(...r.peakMb).toFixed(0) : "";
    out.push(`| ${r.scenario} | ${r.tool} | ${s.toFixed(2)} | ${rate} | ${r.secs.length} | ${peak} | ${ratio} |`);
  }
  return out.join("\n");
}

// ---- skewed: balance by memory ----------------------------------------------------------------

const SKEW_KEYS = Number(args["skewed-keys"]);
interface BalanceRow {
  tool: string;
  secs: number;
  before: number;
  after: number;
  bytesMoved: number;
  keysMoved: number;
  lowerBound: number | null;
}
const balanceRows: BalanceRow[] = [];

/** Per-slot owner, keys and bytes (MEMORY USAGE of every key), and the worst deviation of a master's bytes from an equal share. */
async function memoryState(seed: string): Promise<{ dev: number; owner: (string | null)[]; keys: Float64Array; bytes: Float64Array }> {
  const o = await observeCluster({ seeds: [seed] });
  const m = await measureLoad(o, "memory", undefined, { keyBudget: 100_000_000 });
  const owner: (string | null)[] = new Array(SLOT_COUNT).fill(null);
  for (const n of o.nodes) if (n.role === "master") for (const s of expandRanges(n.slots)) owner[s] = n.id;
  const [keys, bytes] = [new Float64Array(SLOT_COUNT), new Float64Array(SLOT_COUNT)];
  for (const [s, k, b] of m.slots) [keys[s], bytes[s]] = [k, b];
  const per = new Map<string, number>();
  owner.forEach((id, s) => id && per.set(id, (per.get(id) ?? 0) + bytes[s]!));
  const mean = [...per.values()].reduce((a, b) => a + b, 0) / per.size;
  return { dev: Math.max(...[...per.values()].map((b) => (Math.abs(b - mean) / mean) * 100)), owner, keys, bytes };
}

async function skewedOnce(tool: "shardform" | "redis-cli"): Promise<void> {
  const c = await startNodes(PORT, 4);
  try {
    redisCli(["--cluster", "create", ...c.addrs, "--cluster-yes"]);
    await waitConsistent(c.addrs);
    const o = await observeCluster({ seeds: [c.addrs[0]!] });
    await populate(o, { keys: SKEW_KEYS });
    const extra = await writeSkewed(o);
    const before = await memoryState(c.addrs[0]!);
    let t: Timed;
    let lowerBound: number | null = null;
    if (tool === "shardform") {
      const spec = join(work, "skewed.yaml");
      writeFileSync(spec, specYaml(c.addrs).replace("shards:", "  balance: { by: memory }\nshards:"));
      t = await shardform(["apply", spec, "--auto-approve", "--state-dir", work, ...EXTRA]);
      lowerBound = (JSON.parse(readFileSync(join(work, "skewed.plan.json"), "utf8")) as { balance: { lowerBound: number } }).balance.lowerBound;
    } else {
      t = await timed("redis-cli", ["--cluster", "rebalance", c.addrs[0]!, "--cluster-pipeline", "100"]);
    }
    const after = await memoryState(c.addrs[0]!);
    let [bytesMoved, keysMoved] = [0, 0];
    for (let s = 0; s < SLOT_COUNT; s++) if (before.owner[s] !== after.owner[s]) [bytesMoved, keysMoved] = [bytesMoved + before.bytes[s]!, keysMoved + before.keys[s]!];
    const checked = await endChecks(c.addrs[0]!, 4, SKEW_KEYS);
    balanceRows.push({ tool: tool === "shardform" ? "shardform apply (balance.by: memory)" : "redis-cli --cluster rebalance", secs: t.secs, before: before.dev, after: after.dev, bytesMoved, keysMoved, lowerBound });
    log(`skewed ${tool}: ${t.secs.toFixed(2)} s, deviation ${before.dev.toFixed(1)}% -> ${after.dev.toFixed(1)}%, ${(bytesMoved / 2 ** 20).toFixed(1)} MiB moved; ${SKEW_KEYS} test keys + ${extra.keys} skewed keys (${(extra.bytes / 2 ** 20).toFixed(0)} MiB of values); ${checked}`);
  } finally {
    await c.stop();
  }
}

async function benchSkewed(): Promise<void> {
  for (let r = 1; r <= RUNS; r++) for (const tool of ["shardform", "redis-cli"] as const) await skewedOnce(tool);
}

function balanceTable(): string {
  const out = ["| tool | deviation by memory before -> after | bytes moved | keys moved | lower bound | s |", "|---|---|---:|---:|---:|---:|"];
  for (const r of balanceRows) {
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
    out.push(`| ${r.tool} | ${r.before.toFixed(1)}% -> ${r.after.toFixed(1)}% | ${mib(r.bytesMoved)} | ${r.keysMoved} | ${r.lowerBound === null ? "" : mib(r.lowerBound)} | ${r.secs.toFixed(2)} |`);
  }
  return out.join("\n");
}

log(`bench: ${KEYS} keys, ${RUNS} run(s) each, ports from ${PORT} (+10000), work dir ${work}`);
if (ONLY.has("populate")) await benchPopulate();
if (ONLY.has("scale-out")) await benchScaleOut();
if (ONLY.has("scale-in")) await benchScaleIn();
if (ONLY.has("planner")) await benchPlanner();
if (ONLY.has("create")) await benchCreate();
if (ONLY.has("latency")) await benchLatency();
if (ONLY.has("skewed")) await benchSkewed();
if (ONLY.has("valkey9")) await benchValkey9();
if (ONLY.has("growth")) await benchGrowth();
if (rows.length) process.stdout.write(`\n${table()}\n\nredis-cli / shardform: how many times longer redis-cli took than shardform (above 1: shardform is faster).\n`);
for (const n of notes) process.stdout.write(`${n}\n`);
if (latency.length) process.stdout.write(`\n${latencyTable()}\n`);
if (growth.length) process.stdout.write(`\n${growthTable()}\n`);
if (balanceRows.length) process.stdout.write(`\n${balanceTable()}\n`);
