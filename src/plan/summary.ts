import type { ObservedCluster } from "../observe/types.js";
import type { PlanSummary, Step } from "./types.js";
import { countSlots } from "../slots.js";
import { modelFromObserved, simulate, type Model } from "./simulate.js";

/** Masters that own slots at the start and none at the end, other than by handing them over in a failover. */
export function removedMasters(start: Model, steps: readonly Step[], end: Model): string[] {
  const failedOver = new Set(steps.flatMap((s) => (s.kind === "failover" ? [s.master.id] : [])));
  const endOwners = new Set(end.owner.filter((x): x is string => x !== null));
  const startOwners = new Set(start.owner.filter((x): x is string => x !== null));
  return [...startOwners].filter((id) => !endOwners.has(id) && !failedOver.has(id)).sort();
}

export function summarize(observed: ObservedCluster, steps: readonly Step[]): PlanSummary {
  const s: PlanSummary = {
    nodesToAdd: 0,
    nodesToRemove: 0,
    nodesToReset: 0,
    slotsToAssign: 0,
    slotsToMove: 0,
    keysToMove: 0,
    replicasToChange: 0,
    failovers: 0,
    mastersRemoved: removedMasters(modelFromObserved(observed), steps, simulate(observed, steps)).length,
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
      case "move-stray-keys":
        if (st.drop) s.staleKeys = (s.staleKeys ?? 0) + st.keys;
        else s.strayKeys = (s.strayKeys ?? 0) + st.keys;
        s.destructive = true;
        break;
    }
  }
  return s;
}
