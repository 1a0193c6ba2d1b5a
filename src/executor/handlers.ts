/** One handler per step kind; each takes a batch of ready steps of its kind. A missing handler is a compile error. */
import type { StepKind, StepOf } from "../plan/types.js";
import type { ExecCtx } from "./context.js";
import { addSlots } from "./steps/add-slots.js";
import { failover } from "./steps/failover.js";
import { forgetNode } from "./steps/forget-node.js";
import { meet } from "./steps/meet.js";
import { migrateSlots } from "./steps/migrate-slots.js";
import { moveStrayKeys } from "./steps/move-stray-keys.js";
import { replicate } from "./steps/replicate.js";
import { resetNode } from "./steps/reset-node.js";
import type { Unit } from "./scheduler.js";

type Handlers = { [K in StepKind]: (steps: StepOf<K>[], ctx: ExecCtx) => Promise<void> };

export const handlers: Handlers = {
  "reset-node": resetNode,
  meet,
  "add-slots": addSlots,
  replicate,
  "migrate-slot": migrateSlots,
  failover,
  "move-stray-keys": moveStrayKeys,
  "forget-node": forgetNode,
};

export function runUnit(unit: Unit, ctx: ExecCtx): Promise<void> {
  return (handlers[unit.kind] as (steps: Unit["steps"], ctx: ExecCtx) => Promise<void>)(unit.steps, ctx);
}
