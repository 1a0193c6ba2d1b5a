/**
 * Carries out a plan:
 *   1. locks: the checkpoint's lock file, a lock file per node id, and the in-cluster lease;
 *   2. observes the cluster; a new run refuses a stale plan, a resumed one checks that the cluster
 *      matches the steps the journal says are done;
 *   3. walks the plan's steps as a graph (walk.ts), journaling every unit of work;
 *   4. waits until every member agrees, observes again and compares with the plan's end state:
 *      anything else is an error naming the difference, never "complete".
 * The executor never plans again: it runs the steps that are in the plan.
 */
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { viewDisagreements } from "../observe/disagreements.js";
import { ClusterStateError, EndStateError, ShardformError, ShardsFailedOverError, StalePlanError } from "../errors.js";
import { describeChanges, fingerprint } from "../observe/fingerprint.js";
import { waitFirstSyncs } from "./steps/replicate.js";
import { observeCluster } from "../observe/observe.js";
import { loadDrift } from "../observe/load.js";
import type { ObservedCluster } from "../observe/types.js";
import type { Plan, StepOf } from "../plan/types.js";
import type { Access } from "../redis/connect.js";
import { mapLimit } from "../util/limit.js";
import { ExecCtx, StopRequested, type ExecOptions } from "./context.js";
import { endStateDifferences } from "./end-state.js";
import type { LatencyGovernor } from "./latency.js";
import { JournalFile, journalPath, newJournal, numbersToRanges, readJournal, stepNumber } from "./journal.js";
import { ClusterLease } from "./lease.js";
import { LockSet, defaultLockDir, nodeLockFile, waitForLock } from "./lock.js";
import type { ProgressEvent } from "./progress.js";
import { probePermissions } from "./permissions.js";
import { resumeMismatches } from "./resume.js";
import { walk } from "./walk.js";
import { planReplicas } from "../safety/rules.js";

/** How long, at least, the end state may take to settle after the last step before a difference counts (see applyPlan). */
const END_STATE_SETTLE_MS = 5000;

export interface ApplyOptions {
  planFile: string;
  /**
   * The cluster as observed again under the locks, when the caller started that already (apply SPEC
   * with --auto-approve: observeUnderLocks, while it planned); else applyPlan observes it.
   */
  live?: Promise<ObservedCluster> | undefined;
  stateDir?: string | undefined;
  lockDir?: string | undefined;
  restart: boolean;
  access: Access;
  exec: ExecOptions;
  emit: (e: ProgressEvent) => void;
  /** Lets the caller wire Ctrl-C to ctx.stop. */
  onContext?: (ctx: ExecCtx) => void;
  /** How long to wait for another apply's locks and lease (--lock-timeout); default 0: refused at once. */
  lockTimeoutMs?: number;
}

export interface ApplyResult {
  status: "done" | "stopped";
  done: number;
  total: number;
  journalFile: string;
  keysMoved: number;
  warnings: string[];
}

export class ResumeMismatchError extends ShardformError {}

/** The addresses apply reads the cluster through and probes, the same the plan was observed with. */
function observeTargets(snap: ObservedCluster): { seeds: string[]; probe: string[] } {
  const seeds = snap.nodes.filter((n) => n.reachable).map((n) => n.addr);
  const probe = [...snap.outsiders.map((o) => o.addr), ...(snap.aliases ?? []).map((a) => a.addr)];
  return { seeds: seeds.length ? seeds : probe, probe };
}

/** Every node id the plan or the live cluster names: the node locks. */
function nodeIds(plan: Plan, live?: ObservedCluster): string[] {
  const snap = plan.observed.snapshot;
  const ids = new Set<string>([...snap.nodes.map((n) => n.id), ...snap.outsiders.flatMap((o) => (o.id ? [o.id] : []))]);
  for (const n of live?.nodes ?? []) ids.add(n.id);
  for (const o of live?.outsiders ?? []) if (o.id) ids.add(o.id);
  return [...ids];
}

/**
 * Takes the cluster's locks for an apply (node lock files and the in-cluster lease) on everything
 * `observed` names. Re-entrant: apply SPEC takes them before it writes its plan, applyPlan again.
 */
export async function lockCluster(
  observed: ObservedCluster,
  access: Access,
  lockDir: string | undefined,
  what: string,
  wait: { timeoutMs: number; onWait: (msg: string) => void } = { timeoutMs: 0, onWait: () => {} },
): Promise<() => Promise<void>> {
  const dir = lockDir ?? defaultLockDir();
  return waitForLock(
    async () => {
      const locks = new LockSet();
      locks.add([...observed.nodes.map((n) => n.id), ...observed.outsiders.flatMap((o) => (o.id ? [o.id] : []))].map((id) => nodeLockFile(dir, id)), what);
      let lease: ClusterLease;
      try {
        lease = await ClusterLease.acquire([...observed.nodes.filter((n) => n.reachable).map((n) => n.addr), ...observed.outsiders.filter((o) => o.id).map((o) => o.addr)], access);
      } catch (err) {
        locks.release();
        throw err;
      }
      return async () => {
        await lease.release();
        locks.release();
      };
    },
    wait.timeoutMs,
    wait.onWait,
  );
}

/**
 * Observes the cluster again through the nodes `snapshot` was observed with: what apply compares with
 * the plan before its first step (a stale plan is refused). Only while the cluster's locks are held
 * (lockCluster), so that no other apply changes it between this and the first step.
 */
export function observeUnderLocks(snapshot: ObservedCluster, access: Access): Promise<ObservedCluster> {
  return observeCluster({ ...observeTargets(snapshot), access, leases: false });
}

/** The smallest cluster-node-timeout of the masters (MIGRATE's timeout is kept well under it). */
async function readNodeTimeout(ctx: ExecCtx, live: ObservedCluster): Promise<number | null> {
  const masters = live.nodes.filter((n) => n.reachable && n.role === "master");
  const values = await mapLimit(masters, 16, async (m) => {
    try {
      const r = (await (await ctx.conn(m.addr)).call("config", "get", "cluster-node-timeout")) as string[];
      return Number(r[1]);
    } catch {
      return NaN;
    }
  });
  const ok = values.filter((v) => Number.isFinite(v) && v > 0);
  return ok.length ? Math.min(...ok) : null;
}

export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const entered = performance.now();
  const jFile = journalPath(opts.planFile, opts.stateDir);
  const lockDir = opts.lockDir ?? defaultLockDir();
  const what = `apply ${resolve(opts.planFile)}`;
  const locks = new LockSet();
  const waitLock = <T>(take: () => T | Promise<T>): Promise<T> => waitForLock(take, opts.lockTimeoutMs ?? 0, (message) => opts.emit({ type: "note", message }));
  await waitLock(() => locks.add([`${jFile}.lock`], what));
  let lease: ClusterLease | undefined;
  let journal: JournalFile | null = null;
  /** The plan with the node ids that reset-node changed so far (safety rule 7; ctx.renames starts from the checkpoint's). */
  const current = (): Plan => ctx.renamed(plan);
  const ctx = new ExecCtx(opts.access, opts.exec, (e) => {
    if (e.type === "keys-moved" && journal) journal.journal.keysMoved += e.keys;
    opts.emit(e);
  });
  opts.onContext?.(ctx);
  const result = (status: ApplyResult["status"], warnings: string[] = []): ApplyResult => ({
    status,
    done: journal?.done.size ?? 0,
    total: plan.steps.length,
    journalFile: jFile,
    keysMoved: journal?.journal.keysMoved ?? 0,
    warnings,
  });
  try {
    const stepIds = plan.steps.map((s) => s.id);
    let j = opts.restart ? null : readJournal(jFile);
    // A finished checkpoint of another plan (an older plan written to the same path) has nothing to resume.
    if (j && j.planDigest !== plan.digest && j.finished) j = null;
    if (j && j.planDigest !== plan.digest) {
      throw new ResumeMismatchError(
        `${jFile} is the checkpoint of another plan (digest ${j.planDigest.slice(0, 19)}) that did not finish: resume that plan, or pass --restart to start this one (or use --state-dir)`,
      );
    }
    if (j?.finished) {
      journal = new JournalFile(jFile, j, stepIds);
      if (j.endState !== undefined && j.endState !== "verified") {
        // Nothing to run again, and no success to report: the run that finished found another end state.
        throw new EndStateError([`this plan was applied completely (${j.updatedAt}), but the cluster was not in its end state then (${j.endState}); nothing is run again`]);
      }
      opts.emit({ type: "note", message: `this plan was already applied completely (${j.updatedAt}); nothing to do` });
      return result("done");
    }

    await waitLock(() => locks.add(nodeIds(plan).map((id) => nodeLockFile(lockDir, id)), what));
    const observe = () => observeUnderLocks(plan.observed.snapshot, opts.access);
    const live = await (opts.live ?? observe());
    locks.add(nodeIds(plan, live).map((id) => nodeLockFile(lockDir, id)), what);
    const reachable = [...live.nodes.filter((n) => n.reachable).map((n) => n.addr), ...live.outsiders.filter((o) => o.id).map((o) => o.addr)];
    // Before any change: every command the plan needs is permitted on every node apply talks to.
    await probePermissions(plan, reachable, ctx);
    lease = await waitLock(() => ClusterLease.acquire(reachable, opts.access));
    const held = lease;
    ctx.leaseCheck = () => held.verify();
    if (lease.skipped.length > 0) {
      opts.emit({ type: "warning", message: `the in-cluster lease could not be taken on ${lease.skipped.join(", ")} (no answer): an apply from another machine would not see this one there` });
    }

    if (!j) {
      const actual = fingerprint(live);
      if (actual !== plan.observed.fingerprint) {
        throw new StalePlanError(plan.observed.fingerprint, actual, describeChanges(plan.observed.snapshot, live));
      }
      for (const w of loadDrift(plan.balance, plan.observed.snapshot.load, live)) opts.emit({ type: "warning", message: w });
      journal = new JournalFile(jFile, newJournal(plan.digest, opts.planFile), stepIds);
      journal.save();
    } else {
      journal = new JournalFile(jFile, j, stepIds);
      ctx.renames = { ...j.renamed };
      ctx.migrations = { ...j.migrations };
      const resumed = current();
      const bad = resumeMismatches(resumed.observed.snapshot, resumed.steps, journal.done, journal.inFlight, live);
      if (bad.length > 0) {
        throw new ResumeMismatchError(
          `the cluster does not match the ${journal.done.size} step(s) of this plan that are done, so it changed outside this apply:\n` +
            bad.map((b) => `  - ${b}`).join("\n") +
            `\nCheck it with \`shardform check\`, then run \`shardform plan\` again.`,
        );
      }
      const inFlight = [...journal.inFlight];
      const doubt = inFlight.length === 0 ? "" : `; step(s) ${numbersToRanges(inFlight.map(stepNumber))} were in progress and are continued`;
      opts.emit({ type: "note", message: `resuming: ${journal.done.size} of ${plan.steps.length} step(s) done${doubt}` });
    }

    const recorded = journal;
    ctx.onRename = (from, to) => recorded.rename(from, to);
    ctx.onMigration = (name, what) => {
      ctx.migrations[name] = what;
      recorded.migration(name, what);
    };
    const planned = current();
    ctx.replicas = planReplicas(planned.observed.snapshot, planned.steps);
    ctx.planForgets = new Set(planned.steps.flatMap((s) => (s.kind === "forget-node" ? [s.node.id] : [])));
    ctx.knownAddrs.push(...live.nodes.filter((n) => n.reachable).map((n) => n.addr));
    for (const s of plan.steps) if (s.kind === "meet") ctx.knownAddrs.push(s.node.addr);
    const timeout = await readNodeTimeout(ctx, live);
    if (timeout === null) {
      opts.emit({ type: "note", message: `could not read cluster-node-timeout (CONFIG GET refused); assuming 15000 ms for MIGRATE's time budget` });
    } else ctx.nodeTimeoutMs = timeout;

    const limit = paceText(opts.exec);
    opts.emit({ type: "plan-start", steps: plan.steps.length, resumed: journal.done.size, ...(limit ? { limit } : {}) });
    if (ctx.governor) startGovernor(ctx, ctx.governor, plan, journal.done, opts.emit);
    const started = performance.now();
    await walk(plan, journal, ctx);
    const walked = performance.now();
    const latency = await ctx.governor?.stop();

    // Replicas learn new slot owners by gossip: "complete" means every member agrees, and the cluster is the plan's end state.
    opts.emit({ type: "wait", what: "every member to agree on the new configuration" });
    await ctx.waits.waitAgreement();
    // The replicas this plan attached have finished their first sync (bounded; a warning names the late ones).
    const attached = new Map(current().steps.flatMap((s) => (s.kind === "replicate" ? [[s.replica.id, s.replica] as const] : [])));
    const syncWarnings = await waitFirstSyncs([...attached.values()], ctx);
    let final = await observe();
    let verdict = endStateDifferences(current(), final);
    // The cluster settles after the last step on its own: replicas learn the last owners by gossip, and a
    // master that was failed over while paused answers again as an empty master before Redis makes it a
    // replica of its promoted replica. A difference or a view still catching up is read again (after
    // another wait for agreement) until it lasts longer than that can take: then it is real.
    const settleBy = Date.now() + Math.max(END_STATE_SETTLE_MS, 2 * ctx.nodeTimeoutMs);
    let told = false;
    while (
      (verdict.differences.length > 0 || viewDisagreements(final.nodes).some((d) => d.kind === "slots" || d.kind === "role")) &&
      Date.now() < settleBy
    ) {
      if (verdict.differences.length > 0 && !told) {
        told = true;
        opts.emit({ type: "wait", what: `the cluster to settle (up to ${Math.round((settleBy - Date.now()) / 1000)} s) before the end state counts: ${verdict.differences[0]}` });
      }
      await sleep(300);
      await ctx.waits.waitAgreement();
      final = await observe();
      verdict = endStateDifferences(current(), final);
    }
    const { differences, warnings, failovers } = verdict;
    journal.journal.finished = true;
    journal.journal.endState = differences.length ? "differs" : failovers.length ? "failed-over" : "verified";
    journal.save();
    if (differences.length > 0) throw new EndStateError([...differences, ...failovers]);
    for (const w of [...syncWarnings, ...warnings]) opts.emit({ type: "warning", message: w });
    if (failovers.length > 0) throw new ShardsFailedOverError(failovers, plan.specFile);
    const end = performance.now();
    opts.emit({
      type: "done",
      steps: plan.steps.length,
      keysMoved: journal.journal.keysMoved,
      ms: end - started,
      // Where the time went: before apply (process start, observe and plan, for apply SPEC), prepare (locks,
      // observe again, permission probes, lease), steps, verify (agreement and end state).
      timings: { sinceStartMs: Math.round(process.uptime() * 1000), prepareMs: Math.round(started - entered), stepsMs: Math.round(walked - started), verifyMs: Math.round(end - walked) },
      ...(latency ? { latency } : {}),
    });
    return result("done", [...syncWarnings, ...warnings]);
  } catch (err) {
    if (err instanceof StopRequested) {
      opts.emit({ type: "stopped", reason: "stop requested" });
      return result("stopped");
    }
    if (err instanceof ShardformError || (err instanceof Error && err.message.startsWith("Assertion failed"))) throw err;
    throw new ClusterStateError(`apply failed: ${(err as Error).message}`);
  } finally {
    await ctx.closeAll();
    await lease?.release().catch(() => undefined);
    for (const problem of locks.release()) {
      opts.emit({ type: "warning", message: `a lock file could not be removed (${problem}); it names this process, which is ending, so the next apply takes it over` });
    }
  }
}

/** Whether an unfinished checkpoint of this plan exists with work done or in flight (then "resume with" is the right advice). */
export function hasResumableCheckpoint(plan: Plan, planFile: string, stateDir?: string): boolean {
  try {
    const j = readJournal(journalPath(planFile, stateDir));
    return !!j && j.planDigest === plan.digest && !j.finished && (j.done !== "" || j.inFlight !== "");
  } catch {
    return false;
  }
}

/** How apply paces key moves, for its first line (undefined: as fast as it can). */
function paceText(exec: ExecOptions): string | undefined {
  const parts = [
    ...(exec.maxKeysPerSecond > 0 ? [`at most ${exec.maxKeysPerSecond} keys/s`] : []),
    ...(exec.maxLatencyMs ? [`paced so that a command on a moving node waits at most ${exec.maxLatencyMs} ms (99th percentile)`] : []),
  ];
  return parts.length ? parts.join(", ") : undefined;
}

/** Starts the --max-latency-ms PINGs on the nodes that keys move from and to by the steps still to do. */
function startGovernor(ctx: ExecCtx, governor: LatencyGovernor, plan: Plan, done: ReadonlySet<string>, emit: (e: ProgressEvent) => void): void {
  const todo = plan.steps.filter((s): s is StepOf<"migrate-slot"> => s.kind === "migrate-slot" && !done.has(s.id));
  const atomic = todo.filter((s) => s.atomic).length;
  if (atomic > 0) {
    emit({ type: "note", message: `--max-latency-ms paces key-by-key moves only: ${atomic} slot(s) move by the server's own migration, which it cannot pace (plan with --migration keys to pace them too)` });
  }
  const addrs = todo.filter((s) => !s.atomic).flatMap((s) => [s.from.addr, s.to.addr]);
  if (addrs.length > 0) governor.start(addrs, ctx.access);
}
