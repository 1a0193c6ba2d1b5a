import type { PlanSummary, Step } from "./types.js";
import { countSlots } from "../slots.js";

export function summarize(steps: readonly Step[]): PlanSummary {
  const s: PlanSummary = {
    nodesToAdd: 0,
    nodesToRemove: 0,
    nodesToReset: 0,
    slotsToAssign: 0,
    slotsToMove: 0,
    keysToMove: 0,
    replicasToChange: 0,
    failovers: 0,
    destructive: false,
    changes: steps.length > 0,
  };
  for (const st of steps) {
    switch (st.kind) {
      case "meet":
        s.nodesToAdd++;
        break;
      case "forget-node":
        s.nodesToRemove++;
        s.destructive = true;
        break;
      case "reset-node":
        s.nodesToReset++;
        s.destructive = true;
        break;
      case "add-slots":
        s.slotsToAssign += countSlots(st.ranges);
        break;
      case "migrate-slot":
        s.slotsToMove++;
        s.keysToMove += st.estKeys;
        break;
      case "replicate":
        s.replicasToChange++;
        break;
      case "failover":
        s.failovers++;
        break;
    }
  }
  return s;
}
