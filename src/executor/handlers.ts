/** One handler per step kind. A missing handler is a compile error. Each returns true when the step was already done. */
import type { Step } from "../plan/types.js";
import type { ExecCtx } from "./context.js";
import { addSlots } from "./steps/add-slots.js";
import { failover } from "./steps/failover.js";
import { forgetNode } from "./steps/forget-node.js";
import { meet } from "./steps/meet.js";
import { migrateSlot } from "./steps/migrate-slot.js";
import { replicate } from "./steps/replicate.js";
import { resetNode } from "./steps/reset-node.js";

type Handlers = { [K in Step["kind"]]: (s: Extract<Step, { kind: K }>, ctx: ExecCtx) => Promise<boolean> };

export const handlers: Handlers = {
  "reset-node": resetNode,
  meet,
  "add-slots": addSlots,
  replicate,
  "migrate-slot": migrateSlot,
  failover,
  "forget-node": forgetNode,
};

export function runStep(s: Step, ctx: ExecCtx): Promise<boolean> {
  return (handlers[s.kind] as (s: Step, ctx: ExecCtx) => Promise<boolean>)(s, ctx);
}
