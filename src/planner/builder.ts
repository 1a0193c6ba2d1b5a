/**
 * Collects steps in a valid order: each step is checked against the model of the cluster as the
 * earlier steps leave it (a step the model rejects is a bug), and gets its `needs`: the earlier steps
 * it must wait for, from what each step reads and writes (plan/simulate.ts effects).
 */
import { InvalidTransitionError, applyStep, effects, type Model } from "../plan/simulate.js";
import type { NodeRef, Step } from "../plan/types.js";
import { assert } from "../errors.js";

/** A step before it has its id and needs. */
export type Draft = Step extends infer S ? (S extends Step ? Omit<S, "id" | "needs"> : never) : never;

export class StepBuilder {
  readonly model: Model;
  readonly steps: Step[] = [];
  private readonly lastWriter = new Map<string, string>();
  private readonly readers = new Map<string, string[]>();
  private readonly refOf: (id: string) => NodeRef;

  constructor(model: Model, refOf: (id: string) => NodeRef) {
    this.model = model;
    this.refOf = refOf;
  }

  ref(id: string): NodeRef {
    return this.refOf(id);
  }

  push(d: Draft): Step {
    const id = `${this.steps.length + 1}-${d.kind}`;
    const step = { ...d, id, needs: [] as string[] } as Step;
    const { reads, writes } = effects(this.model, step);
    const needs = new Set<string>();
    for (const r of reads) {
      const w = this.lastWriter.get(r);
      if (w) needs.add(w);
    }
    for (const r of writes) {
      const w = this.lastWriter.get(r);
      if (w) needs.add(w);
      for (const x of this.readers.get(r) ?? []) needs.add(x);
    }
    for (const r of reads) {
      const list = this.readers.get(r);
      if (list) list.push(id);
      else this.readers.set(r, [id]);
    }
    for (const r of writes) {
      this.lastWriter.set(r, id);
      this.readers.delete(r);
    }
    needs.delete(id);
    step.needs = [...needs].sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    try {
      applyStep(this.model, step);
    } catch (err) {
      if (err instanceof InvalidTransitionError) assert(false, `planner produced an invalid step: ${err.message}`);
      throw err;
    }
    this.steps.push(step);
    return step;
  }
}
