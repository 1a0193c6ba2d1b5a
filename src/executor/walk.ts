/**
 * Walks the plan as a graph: starts every unit the scheduler hands out, up to --parallelism at once,
 * records each in the journal before it starts and after it ends, and retries a unit that failed on a
 * state that passes by itself (CLUSTERDOWN, LOADING, a node that does not answer for a while) until
 * --wait-timeout. Handlers look at the live state first, so running a unit again is always safe.
 * After a failure (of a unit, or of a checkpoint write) or a first Ctrl-C nothing new starts, and the
 * units in flight finish (a unit cut short can leave a slot open, or a node forgotten by the cluster but
 * not reset). The retry budget of a unit counts from its first failure. Before units start, the
 * in-cluster lease is checked again (ctx.leaseCheck): an apply that lost it stops the same way.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ShardformError, StepFailedError, assert } from "../errors.js";
import { describe, transientCause } from "../redis/errors.js";
import type { Plan } from "../plan/types.js";
import { StopRequested, type ExecCtx } from "./context.js";
import { describeStep } from "./describe.js";
import { runUnit } from "./handlers.js";
import type { JournalFile } from "./journal.js";
import { Scheduler, type Unit } from "./scheduler.js";

function describeUnit(u: Unit): string {
  if (u.steps.length === 1) return `step ${u.steps[0]!.id} (${describeStep(u.steps[0]!)})`;
  return `steps ${u.steps[0]!.id}..${u.steps.at(-1)!.id} (${u.steps.length} ${u.kind} steps)`;
}

/** Runs one unit of work; the walk's default is the step handlers (tests pass fakes). */
export type RunUnit = (unit: Unit, ctx: ExecCtx) => Promise<void>;

async function runWithRetry(unit: Unit, ctx: ExecCtx, run: RunUnit): Promise<void> {
  /** When the unit first failed on a passing state: the retry budget (--wait-timeout) counts from there. */
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      // Steps name a node reset meanwhile by its new id (safety rule 7).
      await run(ctx.renamed(unit), ctx);
      return;
    } catch (err) {
      if (err instanceof StopRequested) throw err;
      const cause = transientCause(err);
      if (!cause) {
        if (err instanceof ShardformError) throw err;
        throw new StepFailedError(unit.steps[0]!.id, unit.kind, `${describeUnit(unit)}: ${describe(err)}. The checkpoint is consistent: fix the cause and run the same apply again to continue.`);
      }
      if (ctx.stop === "hard") throw new StopRequested();
      firstFailure ??= Date.now();
      const waited = Date.now() - firstFailure;
      if (waited >= ctx.options.waitTimeoutMs) {
        throw new StepFailedError(
          unit.steps[0]!.id,
          unit.kind,
          `${describeUnit(unit)} kept failing for ${Math.round(waited / 1000)} s: ${cause}. The checkpoint is consistent: fix the cause and run the same apply again (--wait-timeout sets how long apply waits).`,
        );
      }
      ctx.emit({ type: "retry", what: describeUnit(unit), cause, attempt });
      await sleep(Math.min(250 * 2 ** Math.min(attempt, 5), 5000));
    }
  }
}

/**
 * Runs every step of the plan not done yet. Whatever fails (a unit, the checkpoint), it starts nothing
 * new, lets the units in flight finish, and only then throws the first failure: it never returns while
 * a unit still runs.
 */
export async function walk(plan: Plan, journal: JournalFile, ctx: ExecCtx, run: RunUnit = runUnit): Promise<void> {
  const sched = new Scheduler(plan.steps, journal.done, ctx.options.window, ctx.options.atomicWindow);
  const indexOf = new Map(plan.steps.map((s, i) => [s.id, i]));
  const running = new Set<Promise<void>>();
  // A window that drained frees its pair for the next window at once, not when its handover ends.
  const windows = new Map<string, Unit>();
  let wake: (() => void) | undefined;
  ctx.onWindowDrained = (id) => {
    const unit = windows.get(id);
    if (unit && sched.release(unit)) wake?.();
  };
  let failure: unknown;
  const fail = (err: unknown): void => {
    if (failure !== undefined) return;
    failure = err;
    // The others stop at their next safe point (slot moves in flight are finished first).
    if (ctx.stop === "none") ctx.stop = "soft";
  };
  const start = (unit: Unit): void => {
    const ids = unit.steps.map((s) => s.id);
    let t0 = 0;
    if (unit.pair) windows.set(unit.steps[0]!.id, unit);
    // The journal names the unit's steps as in flight before the unit starts (written off the main
    // thread: other units go on meanwhile). A failure or a stop meanwhile: the unit does not start,
    // and the journal says so.
    const p: Promise<void> = journal
      .begin(ids)
      .then(() => {
        if (failure !== undefined || ctx.stop !== "none") {
          journal.unbegin(ids).catch(fail);
          throw new StopRequested();
        }
        for (const s of unit.steps) ctx.emit({ type: "step-start", index: indexOf.get(s.id)!, id: s.id, kind: s.kind, text: describeStep(s) });
        t0 = performance.now();
        return runWithRetry(unit, ctx, run);
      })
      .then(
        () => {
          sched.complete(unit);
          // Slots of a window share its time; other batched steps each took all of it.
          const ms = (performance.now() - t0) / (unit.kind === "migrate-slot" ? unit.steps.length : 1);
          // A step is told done once the journal says so (units that need it may start at once: their
          // own record, written after this one was asked for, says it too).
          journal.complete(ids).then(() => {
            for (const s of unit.steps) ctx.emit({ type: "step-done", index: indexOf.get(s.id)!, id: s.id, kind: s.kind, skipped: false, ms });
          }, fail);
        },
        (err: unknown) => {
          sched.abandon(unit);
          if (!(err instanceof StopRequested)) fail(err);
        },
      )
      .finally(() => {
        running.delete(p);
        windows.delete(unit.steps[0]!.id);
      });
    running.add(p);
  };
  for (;;) {
    // The in-cluster lease is checked again before units start: another apply may have taken it.
    if (failure === undefined && ctx.stop === "none" && running.size < ctx.options.parallelism && ctx.leaseCheck) {
      try {
        await ctx.leaseCheck();
      } catch (err) {
        fail(err);
      }
    }
    if (failure === undefined && ctx.stop === "none") {
      for (const u of sched.take(ctx.options.parallelism - running.size)) start(u);
    }
    if (running.size === 0) break;
    await Promise.race([...running, new Promise<void>((resolve) => (wake = resolve))]);
  }
  ctx.onWindowDrained = undefined;
  // The last records are in place before the walk returns (a write that failed has called fail).
  await journal.idle();
  if (failure !== undefined) throw failure;
  if (!sched.finished) {
    if (ctx.stop !== "none") throw new StopRequested();
    assert(false, "no step can run but some are left: the plan's needs form a cycle");
  }
}
