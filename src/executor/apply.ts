/**
 * Carries out a plan: refuses a stale or edited plan, then runs each step's handler, writing the
 * journal before and after every step. Rerun after an interruption, it checks that the cluster
 * matches the completed steps and continues with the one in doubt (handlers are idempotent).
 * The executor never plans again: it runs the steps that are in the plan.
 */
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { StalePlanError, ClusterStateError, ShardformError } from "../errors.js";
import { describeChanges, fingerprint } from "../observe/fingerprint.js";
import { observeCluster } from "../observe/observe.js";
import type { Plan, Step } from "../plan/types.js";
import type { Credentials } from "../redis/connect.js";
import { journalPath, readJournal, saveJournal, type Journal } from "./checkpoint.js";
import { ExecCtx, StopRequested, type ExecOptions } from "./context.js";
import { runStep } from "./handlers.js";
import { migrateWindow } from "./steps/migrate-window.js";
import { acquireLock } from "./lock.js";
import { prefixMismatches } from "./prefix.js";
import type { ProgressEvent } from "./progress.js";
import { describeStep } from "./describe.js";

export interface ApplyOptions {
  planFile: string;
  stateDir?: string | undefined;
  restart: boolean;
  credentials: Credentials;
  exec: ExecOptions;
  emit: (e: ProgressEvent) => void;
  /** Lets the caller wire Ctrl-C to ctx.stopRequested. */
  onContext?: (ctx: ExecCtx) => void;
}

export interface ApplyResult {
  status: "done" | "stopped";
  completed: number;
  total: number;
  journalFile: string;
  keysMoved: number;
}

export class ResumeMismatchError extends ShardformError {}

type MigrateStep = Extract<Step, { kind: "migrate-slot" }>;

/** "step 7", or "steps 4-259, 1369-1624": the numbers of the steps, as ranges. */
function stepRanges(steps: readonly Step[]): string {
  const nums = steps.map((s) => Number.parseInt(s.id, 10)).sort((a, b) => a - b);
  const parts: string[] = [];
  for (let k = 0; k < nums.length; ) {
    let e = k;
    while (e + 1 < nums.length && nums[e + 1] === nums[e]! + 1) e++;
    parts.push(e === k ? `${nums[k]}` : `${nums[k]}-${nums[e]}`);
    k = e + 1;
  }
  return `${nums.length === 1 ? "step" : "steps"} ${parts.join(", ")}`;
}

/** The end (exclusive) of the run of consecutive steps of the same kind as steps[i]. */
function runEnd(steps: readonly Step[], i: number): number {
  let end = i;
  while (end < steps.length && steps[end]!.kind === steps[i]!.kind) end++;
  return end;
}

/**
 * The windows of a run of consecutive migrate-slot steps, as lanes: one lane per source->target
 * pair, in plan order, cut into windows of at most `window` steps. Lanes touch distinct slots, so
 * they can run at the same time; within a lane the windows run one after another.
 */
function lanes(steps: readonly MigrateStep[], window: number): MigrateStep[][][] {
  const byPair = new Map<string, MigrateStep[][]>();
  for (const s of steps) {
    const key = `${s.from.id}>${s.to.id}`;
    let ws = byPair.get(key);
    if (!ws) byPair.set(key, (ws = [[]]));
    let last = ws[ws.length - 1]!;
    if (last.length >= window) ws.push((last = []));
    last.push(s);
  }
  return [...byPair.values()];
}

export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const jFile = journalPath(opts.planFile, opts.stateDir);
  const memberIds = plan.observed.snapshot.nodes.map((n) => n.id).sort().join(",");
  const clusterKey = createHash("sha256").update(memberIds).digest("hex").slice(0, 16);
  const releasePlan = acquireLock(`${jFile}.lock`, `apply ${resolve(opts.planFile)}`);
  let releaseCluster: (() => void) | undefined;
  let journal: Journal | null = null;
  const ctx = new ExecCtx(opts.credentials, opts.exec, (e) => {
    if (e.type === "keys-moved" && journal) journal.keysMoved += e.keys;
    opts.emit(e);
  });
  opts.onContext?.(ctx);
  try {
    releaseCluster = acquireLock(join(tmpdir(), "shardform-locks", `cluster-${clusterKey}.lock`), `apply ${resolve(opts.planFile)}`);
    journal = opts.restart ? null : readJournal(jFile);
    // A finished checkpoint of another plan (an older plan written to the same path) has nothing to resume.
    if (journal && journal.planDigest !== plan.digest && journal.finished) journal = null;
    if (journal && journal.planDigest !== plan.digest) {
      throw new ResumeMismatchError(
        `${jFile} is the checkpoint of another plan (digest ${journal.planDigest.slice(0, 19)}) that did not finish: resume that plan, or pass --restart to start this one (or use --state-dir)`,
      );
    }
    if (journal?.finished) {
      opts.emit({ type: "note", message: `this plan was already applied completely (${journal.updatedAt}); nothing to do` });
      return { status: "done", completed: journal.completed, total: plan.steps.length, journalFile: jFile, keysMoved: journal.keysMoved };
    }

    const probe = [...plan.observed.snapshot.nodes.map((n) => n.addr), ...plan.observed.snapshot.outsiders.map((o) => o.addr)];
    ctx.knownAddrs.push(...plan.observed.snapshot.nodes.filter((n) => n.reachable).map((n) => n.addr));
    for (const s of plan.steps) if (s.kind === "meet") ctx.knownAddrs.push(s.node.addr);
    const seeds = [...ctx.knownAddrs];
    const live = await observeCluster({ seeds, probe, credentials: opts.credentials });

    if (!journal) {
      const actual = fingerprint(live);
      if (actual !== plan.observed.fingerprint) {
        throw new StalePlanError(plan.observed.fingerprint, actual, describeChanges(plan.observed.snapshot, live));
      }
      journal = {
        kind: "shardform-journal",
        formatVersion: 1,
        planDigest: plan.digest,
        planFile: resolve(opts.planFile),
        completed: 0,
        inDoubt: [],
        keysMoved: 0,
        startedAt: new Date().toISOString(),
        updatedAt: "",
        finished: false,
      };
      saveJournal(jFile, journal);
    } else {
      const inDoubtIds = new Set(journal.inDoubt);
      const aheadIds = new Set(journal.doneAhead ?? []);
      const inDoubt = plan.steps.filter((s) => inDoubtIds.has(s.id));
      const done = plan.steps.filter((s, i) => i < journal!.completed || aheadIds.has(s.id));
      const bad = prefixMismatches(plan.observed.snapshot, done, inDoubt, live);
      if (bad.length > 0) {
        throw new ResumeMismatchError(
          `the cluster does not match the ${done.length} completed step(s) of this plan, so it changed outside this apply:\n` +
            bad.map((b) => `  - ${b}`).join("\n") +
            `\nCheck it with \`shardform check\`, then plan again.`,
        );
      }
      const doubt = inDoubt.length === 0 ? "" : `; ${stepRanges(inDoubt)} ${inDoubt.length === 1 ? "was" : `(${inDoubt.length}) were`} in progress and ${inDoubt.length === 1 ? "is" : "are"} continued`;
      const ahead = aheadIds.size > 0 ? ` (and ${aheadIds.size} later step(s) already done)` : "";
      opts.emit({ type: "note", message: `resuming after step ${journal.completed} of ${plan.steps.length}${ahead}${doubt}` });
    }

    // Journal bookkeeping: steps go in doubt before they start and are done when they finish;
    // `completed` is the prefix of the plan that is done, `doneAhead` the steps done beyond it.
    const j = journal;
    const doneAhead = new Set(j.doneAhead ?? []);
    const begin = (group: Step[]): void => {
      j.inDoubt.push(...group.map((s) => s.id));
      saveJournal(jFile, j);
    };
    const finish = (group: Step[]): void => {
      const ids = new Set(group.map((s) => s.id));
      j.inDoubt = j.inDoubt.filter((id) => !ids.has(id));
      for (const id of ids) doneAhead.add(id);
      while (j.completed < plan.steps.length && doneAhead.delete(plan.steps[j.completed]!.id)) j.completed++;
      j.doneAhead = [...doneAhead];
      saveJournal(jFile, j);
    };
    const indexOf = new Map(plan.steps.map((s, i) => [s.id, i]));
    const run = async (group: Step[]): Promise<void> => {
      const index = (s: Step): number => indexOf.get(s.id)!;
      if (group.length === 0) return;
      ctx.checkStop();
      begin(group);
      for (const s of group) opts.emit({ type: "step-start", index: index(s), id: s.id, kind: s.kind, text: describeStep(s) });
      const t0 = performance.now();
      let skipped = false;
      try {
        if (group.length === 1) skipped = await runStep(group[0]!, ctx);
        else if (group[0]!.kind === "migrate-slot") await migrateWindow(group as MigrateStep[], ctx);
        else skipped = (await Promise.all(group.map((s) => runStep(s, ctx)))).every(Boolean);
      } catch (err) {
        if (err instanceof StopRequested || err instanceof ShardformError) throw err;
        const s = group[0]!;
        throw new ClusterStateError(`step ${s.id} (${describeStep(s)}) failed: ${(err as Error).message}. The checkpoint is consistent: fix the cause and run the same apply again to continue.`);
      }
      finish(group);
      // Slots of a window share the time; steps run side by side (meets) each took all of it.
      const ms = (performance.now() - t0) / (group[0]!.kind === "migrate-slot" ? group.length : 1);
      for (const s of group) opts.emit({ type: "step-done", index: index(s), id: s.id, kind: s.kind, skipped, ms });
    };

    opts.emit({ type: "plan-start", steps: plan.steps.length, resumed: j.completed + doneAhead.size });
    const started = performance.now();
    for (let i = j.completed; i < plan.steps.length; ) {
      const step = plan.steps[i]!;
      if (step.kind === "meet") {
        // New nodes join together: one wait for the cluster to take them all in, not one each.
        const end = runEnd(plan.steps, i);
        ctx.current = step;
        await run(plan.steps.slice(i, end).filter((s) => !doneAhead.has(s.id)));
        i = end;
        continue;
      }
      if (step.kind !== "migrate-slot") {
        ctx.current = step;
        await run([step]);
        i++;
        continue;
      }
      // A run of slot moves: lanes of different source->target pairs run side by side.
      const end = runEnd(plan.steps, i);
      const todo = plan.steps.slice(i, end).filter((s) => !doneAhead.has(s.id)) as MigrateStep[];
      const queue = lanes(todo, opts.exec.window);
      let failure: unknown;
      const worker = async (): Promise<void> => {
        for (let lane = queue.shift(); lane; lane = queue.shift()) {
          for (const w of lane) {
            ctx.current = w[0]!;
            await run(w);
          }
        }
      };
      const workers = Array.from({ length: Math.min(opts.exec.parallel, queue.length) }, () =>
        worker().catch((err: unknown) => {
          // One lane failed: the others stop at their next safe point, leaving their windows in doubt.
          if (!(err instanceof StopRequested) && failure === undefined) failure = err;
          ctx.stopRequested = true;
        }),
      );
      await Promise.all(workers);
      if (failure !== undefined) throw failure;
      ctx.checkStop();
      i = end;
    }
    // Replicas learn new slot owners by gossip: "complete" means every member agrees.
    opts.emit({ type: "wait", what: "every member to agree on the new configuration" });
    await ctx.waitAgreement();
    journal.finished = true;
    saveJournal(jFile, journal);
    opts.emit({ type: "done", steps: plan.steps.length, keysMoved: journal.keysMoved, ms: performance.now() - started });
    return { status: "done", completed: journal.completed, total: plan.steps.length, journalFile: jFile, keysMoved: journal.keysMoved };
  } catch (err) {
    if (err instanceof StopRequested) {
      // `completed` is what the loop last saved; `keysMoved` also counts batches moved since then.
      opts.emit({ type: "stopped", reason: "stop requested" });
      return { status: "stopped", completed: journal?.completed ?? 0, total: plan.steps.length, journalFile: jFile, keysMoved: journal?.keysMoved ?? 0 };
    }
    throw err;
  } finally {
    await ctx.closeAll();
    releaseCluster?.();
    releasePlan();
  }
}
