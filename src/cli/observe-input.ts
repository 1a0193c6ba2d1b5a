/** Where a command's topology comes from (a live cluster or a saved snapshot), and the plan made from it. */
import { bigKeyWarnings, surveyBigKeys } from "../observe/big-keys.js";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster, type ObserveOptions } from "../observe/observe.js";
import { DEFAULT_LOAD_WINDOW_S, measureLoad, type LoadBy } from "../observe/load.js";
import { unsettled } from "../observe/disagreements.js";
import { readSnapshot } from "../observe/snapshot.js";
import type { ObservedCluster } from "../observe/types.js";
import type { Access } from "../redis/connect.js";
import { planSteps } from "../planner/plan.js";
import type { Migration } from "../planner/migration.js";
import { makePlan } from "../plan/make.js";
import type { AccessSource, Plan } from "../plan/types.js";
import { specNodes } from "../spec/nodes.js";
import type { ClusterSpec } from "../spec/types.js";
import { TOOL_VERSION } from "../version.js";
import { journalPath, readJournal } from "../executor/journal.js";
import { readPlan } from "../plan/file.js";
import { pastMoves, withRenames, type PastMove } from "../safety/rules.js";

export const DEFAULT_SETTLE_S = 15;

/**
 * Observes the cluster; while members still disagree about roles or slot owners (right after a
 * failover, or a cluster just created), observes again, for up to `settleMs`, saying what it waits for.
 */
export async function observeSettled(opts: ObserveOptions, settleMs: number, say: (msg: string) => void): Promise<ObservedCluster> {
  const deadline = Date.now() + settleMs;
  let said = "";
  for (;;) {
    const o = await observeCluster(opts);
    const u = unsettled(o.nodes);
    if (u.length === 0 || Date.now() >= deadline) return o;
    if (u[0] !== said) say(`Waiting for the cluster to settle (up to ${Math.round(settleMs / 1000)} s): ${u[0]}${u.length > 1 ? ` (and ${u.length - 1} more)` : ""}`);
    said = u[0]!;
    await sleep(300);
  }
}

export async function loadTopology(args: {
  observedFile?: string | undefined;
  seeds: string[];
  probe?: string[];
  access: Access;
  status: (msg: string) => void;
  /** Waits (to stderr) are always shown. */
  say: (msg: string) => void;
  settleMs?: number;
  /** Also measure what each slot holds (live cluster only; a snapshot carries its own measurement). */
  measure?: LoadBy | undefined;
  /** By cpu: seconds between the two readings. */
  loadWindowS?: number | undefined;
}): Promise<ObservedCluster> {
  if (args.observedFile) {
    args.status(`Reading the topology from ${args.observedFile} (no cluster contacted)`);
    return readSnapshot(args.observedFile);
  }
  args.status(`Observing the cluster via ${args.seeds.join(", ")} ...`);
  const o = await observeSettled({ seeds: args.seeds, probe: args.probe ?? [], access: args.access }, args.settleMs ?? DEFAULT_SETTLE_S * 1000, args.say);
  if (args.measure) await addLoad(o, args.measure, args.access, args.status, args.loadWindowS);
  return o;
}

/** Measures what each slot holds (the spec balances by it) into the observed topology. */
export async function addLoad(o: ObservedCluster, by: LoadBy, access: Access, status: (msg: string) => void, loadWindowS = DEFAULT_LOAD_WINDOW_S): Promise<void> {
  status(by === "cpu" ? `Measuring CPU per slot over ${loadWindowS} s (--load-window) ...` : `Measuring ${by} per slot ...`);
  o.load = await measureLoad(o, by, access, { loadWindowS });
  status(`Measured: ${o.load.method}.`);
}

/**
 * Plans the spec against an observed topology. With `access` (a live cluster), the slots the plan
 * moves are sampled for big keys first, and what is found becomes warnings.
 */
export async function planFrom(args: {
  spec: ClusterSpec;
  specFile: string;
  observed: ObservedCluster;
  source: AccessSource;
  allowMassRemoval?: boolean;
  access?: Access;
  history?: readonly PastMove[];
  migration?: Migration;
}): Promise<Plan> {
  const { steps, notes, warnings, balance } = planSteps(args.spec, args.observed, { allowMassRemoval: args.allowMassRemoval ?? false, history: args.history ?? [], migration: args.migration ?? "auto" });
  const moves = steps.flatMap((s) => (s.kind === "migrate-slot" ? [{ slot: s.slot, from: s.from.addr }] : []));
  if (args.access && moves.length > 0) warnings.push(...bigKeyWarnings(await surveyBigKeys(moves, args.access)));
  return makePlan({
    spec: args.spec,
    specFile: args.specFile,
    observed: args.observed,
    steps,
    notes,
    warnings,
    access: args.source,
    allowMassRemoval: args.allowMassRemoval ?? false,
    toolVersion: TOOL_VERSION,
    ...(balance ? { balance } : {}),
  });
}

/**
 * The slot moves of earlier plans (`--history`), for safety rule 9: keys one of them left on a node
 * that no longer owns the slot are moved to the owner. A plan's node ids renamed by its reset-node
 * steps (recorded in its checkpoint, beside it or in `stateDir`) are followed.
 */
export function readHistory(files: readonly string[], stateDir?: string): PastMove[] {
  return files.flatMap((file) => {
    const plan = readPlan(file);
    const renamed = readJournal(journalPath(file, stateDir))?.renamed ?? {};
    return pastMoves(withRenames(plan, renamed));
  });
}

/** Observes (or reads the snapshot), then plans the spec against it. */
export async function planSpec(args: {
  spec: ClusterSpec;
  specFile: string;
  observedFile?: string | undefined;
  seeds?: string[] | undefined;
  access: Access;
  source: AccessSource;
  allowMassRemoval?: boolean;
  history?: readonly PastMove[];
  migration?: Migration;
  loadWindowS?: number;
  status: (msg: string) => void;
  say: (msg: string) => void;
  settleMs?: number;
}): Promise<{ plan: Plan; observed: ObservedCluster }> {
  const observed = await loadTopology({
    observedFile: args.observedFile,
    seeds: args.seeds ?? args.spec.seeds,
    probe: specNodes(args.spec),
    access: args.access,
    status: args.status,
    say: args.say,
    measure: args.spec.balanceBy,
    loadWindowS: args.loadWindowS,
    ...(args.settleMs !== undefined ? { settleMs: args.settleMs } : {}),
  });
  const { access, status: _s, say: _y, settleMs: _m, loadWindowS: _w, ...rest } = args;
  return { plan: await planFrom({ ...rest, observed, ...(args.observedFile ? {} : { access }) }), observed };
}
