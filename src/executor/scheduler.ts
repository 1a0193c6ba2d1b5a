/**
 * Which steps may run now. Pure: it knows the plan's steps and their needs, what is done and what is
 * running, and hands out units of work:
 *  - slot moves of one source -> target pair, in plan order, in windows of at most `window` slots (the
 *    server's own migration takes all the pair's ready slots in one: it streams them as one operation);
 *    a pair's next window starts once its window in flight has drained (`release`: its keys are on the
 *    target, its handover begins), so the source moves keys while the last window is handed over; a
 *    pair has two windows in flight at most, and only one of them moving keys;
 *  - every other kind: all ready steps of that kind together (they act at once and share one wait
 *    for the cluster to agree).
 * A step is ready when every step it needs is done.
 */
import type { Step, StepKind } from "../plan/types.js";
import { assert } from "../errors.js";

export interface Unit {
  kind: StepKind;
  steps: Step[];
  /** For slot moves: "fromId>toId". */
  pair?: string;
}

/** Windows of one pair in flight at most: one handing over while the next moves keys. */
const WINDOWS_PER_PAIR = 2;

const atomic = (s: Step): boolean => s.kind === "migrate-slot" && s.atomic === true;

export function pairOf(s: Step): string | undefined {
  return s.kind === "migrate-slot" ? `${s.from.id}>${s.to.id}` : undefined;
}

export class Scheduler {
  private readonly steps: readonly Step[];
  private readonly index = new Map<string, number>();
  private readonly waitingOn: number[];
  private readonly dependents: number[][];
  private readonly ready = new Set<number>();
  private readonly running = new Set<number>();
  /** Windows in flight per source -> target pair. */
  private readonly pairUnits = new Map<string, number>();
  /** Each pair's window that has not drained yet (see release): one at most. */
  private readonly moving = new Map<string, Unit>();
  private readonly window: number;
  /** Slots of one server-side migration (default: every ready slot of the pair). */
  private readonly atomicWindow: number;
  private left: number;
  /** Each step's pair (pairOf), computed once. */
  private readonly pairs: (string | undefined)[];
  /** The ready steps in plan order (with some no longer ready); rebuilt when steps became ready. */
  private order: number[] = [];
  private orderStale = true;

  constructor(steps: readonly Step[], done: ReadonlySet<string>, window: number, atomicWindow = Infinity) {
    this.steps = steps;
    this.window = Math.max(1, window);
    this.atomicWindow = Math.max(1, atomicWindow);
    steps.forEach((s, i) => this.index.set(s.id, i));
    this.pairs = steps.map(pairOf);
    this.waitingOn = steps.map(() => 0);
    this.dependents = steps.map(() => []);
    this.left = 0;
    steps.forEach((s, i) => {
      if (done.has(s.id)) return;
      this.left++;
      for (const need of s.needs) {
        const j = this.index.get(need);
        assert(j !== undefined, `step ${s.id} needs unknown step ${need}`);
        if (done.has(need)) continue;
        this.waitingOn[i]!++;
        this.dependents[j]!.push(i);
      }
      if (this.waitingOn[i] === 0) this.ready.add(i);
    });
  }

  /** No step is left to run or running. */
  get finished(): boolean {
    return this.left === 0;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** Up to `max` units of ready steps, earliest steps first. */
  take(max: number): Unit[] {
    const units: Unit[] = [];
    if (max <= 0 || this.ready.size === 0) return units;
    if (this.orderStale) {
      this.order = [...this.ready].sort((a, b) => a - b);
      this.orderStale = false;
    } else this.order = this.order.filter((i) => this.ready.has(i));
    const order = this.order;
    const byKind = new Map<StepKind, number[]>();
    const byPair = new Map<string, number[]>();
    const firstOf: { key: string; at: number }[] = [];
    for (const i of order) {
      const s = this.steps[i]!;
      const pair = this.pairs[i];
      if (pair !== undefined) {
        if (this.moving.has(pair) || (this.pairUnits.get(pair) ?? 0) >= WINDOWS_PER_PAIR) continue;
        const list = byPair.get(pair);
        if (!list) {
          byPair.set(pair, [i]);
          firstOf.push({ key: `pair ${pair}`, at: i });
        } else if (atomic(s) && atomic(this.steps[list[0]!]!) ? list.length < this.atomicWindow : list.length < this.window) list.push(i);
      } else {
        const list = byKind.get(s.kind);
        if (!list) {
          byKind.set(s.kind, [i]);
          firstOf.push({ key: `kind ${s.kind}`, at: i });
        } else list.push(i);
      }
    }
    firstOf.sort((a, b) => a.at - b.at);
    for (const { key } of firstOf) {
      if (units.length >= max) break;
      const [what, name] = [key.slice(0, key.indexOf(" ")), key.slice(key.indexOf(" ") + 1)];
      const members = what === "pair" ? byPair.get(name)! : byKind.get(name as StepKind)!;
      for (const i of members) {
        this.ready.delete(i);
        this.running.add(i);
      }
      const steps = members.map((i) => this.steps[i]!);
      const unit: Unit = { kind: steps[0]!.kind, steps, ...(what === "pair" ? { pair: name } : {}) };
      if (what === "pair") {
        this.pairUnits.set(name, (this.pairUnits.get(name) ?? 0) + 1);
        this.moving.set(name, unit);
      }
      units.push(unit);
    }
    return units;
  }

  /**
   * The window's keys are all on its target and its handover begins: its pair may start its next window.
   * True when that freed the pair (false for a unit released before, or not a window).
   */
  release(unit: Unit): boolean {
    if (!unit.pair || this.moving.get(unit.pair) !== unit) return false;
    this.moving.delete(unit.pair);
    return true;
  }

  private leave(unit: Unit): void {
    if (!unit.pair) return;
    this.release(unit);
    const n = (this.pairUnits.get(unit.pair) ?? 1) - 1;
    if (n > 0) this.pairUnits.set(unit.pair, n);
    else this.pairUnits.delete(unit.pair);
  }

  /** The unit's steps are done: their dependents may become ready. */
  complete(unit: Unit): void {
    for (const s of unit.steps) {
      const i = this.index.get(s.id)!;
      assert(this.running.delete(i), `step ${s.id} completed but was not running`);
      this.left--;
      for (const d of this.dependents[i]!) {
        if (--this.waitingOn[d]! === 0) {
          this.ready.add(d);
          this.orderStale = true;
        }
      }
    }
    this.leave(unit);
  }

  /** The unit did not finish (stopped or failed): its steps stay in flight, not runnable again in this run. */
  abandon(unit: Unit): void {
    for (const s of unit.steps) this.running.delete(this.index.get(s.id)!);
    this.leave(unit);
  }
}
