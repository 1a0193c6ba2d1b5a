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

/** The steps run together from index i: a window of migrate-slot steps between one pair, or one step. */
function stepGroup(steps: readonly Step[], i: number, window: number): Step[] {
  const first = steps[i]!;
  if (first.kind !== "migrate-slot" || window <= 1) return [first];
  const group: Step[] = [first];
  for (let j = i + 1; j < steps.length && group.length < window; j++) {
    const s = steps[j]!;
    if (s.kind !== "migrate-slot" || s.from.id !== first.from.id || s.to.id !== first.to.id) break;
    group.push(s);
  }
  return group;
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
      const inDoubt = plan.steps.filter((s) => journal!.inDoubt.includes(s.id));
      const bad = prefixMismatches(plan.observed.snapshot, plan.steps, journal.completed, inDoubt, live);
      if (bad.length > 0) {
        throw new ResumeMismatchError(
          `the cluster does not match the ${journal.completed} completed step(s) of this plan, so it changed outside this apply:\n` +
            bad.map((b) => `  - ${b}`).join("\n") +
            `\nCheck it with \`shardform check\`, then plan again.`,
        );
      }
      const doubt =
        inDoubt.length === 0
          ? ""
          : inDoubt.length === 1
            ? `; step ${inDoubt[0]!.id} was in progress and is continued`
            : `; steps ${inDoubt[0]!.id} to ${inDoubt[inDoubt.length - 1]!.id} (${inDoubt.length}) were in progress and are continued`;
      opts.emit({ type: "note", message: `resuming after step ${journal.completed} of ${plan.steps.length}${doubt}` });
    }

    opts.emit({ type: "plan-start", steps: plan.steps.length, resumed: journal.completed });
    const started = performance.now();
    for (let i = journal.completed; i < plan.steps.length; ) {
      const group = stepGroup(plan.steps, i, opts.exec.window);
      const step = group[0]!;
      ctx.current = step;
      if (ctx.stopRequested) throw new StopRequested();
      // Every step of the group is in doubt until the whole group is done.
      journal.inDoubt = group.map((s) => s.id);
      saveJournal(jFile, journal);
      group.forEach((s, k) => opts.emit({ type: "step-start", index: i + k, id: s.id, kind: s.kind, text: describeStep(s) }));
      const t0 = performance.now();
      let skipped = false;
      try {
        if (group.length > 1) await migrateWindow(group as Extract<Step, { kind: "migrate-slot" }>[], ctx);
        else skipped = await runStep(step, ctx);
      } catch (err) {
        if (err instanceof StopRequested || err instanceof ShardformError) throw err;
        throw new ClusterStateError(`step ${step.id} (${describeStep(step)}) failed: ${(err as Error).message}. The checkpoint is consistent: fix the cause and run the same apply again to continue.`);
      }
      journal.completed = i + group.length;
      journal.inDoubt = [];
      saveJournal(jFile, journal);
      const ms = performance.now() - t0;
      group.forEach((s, k) => opts.emit({ type: "step-done", index: i + k, id: s.id, kind: s.kind, skipped, ms: ms / group.length }));
      i += group.length;
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
