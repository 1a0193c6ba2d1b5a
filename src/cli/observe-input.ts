/** Where a command's topology comes from (a live cluster or a saved snapshot), and the plan made from it. */
import { observeCluster } from "../observe/observe.js";
import { readSnapshot } from "../observe/snapshot.js";
import type { ObservedCluster } from "../observe/types.js";
import type { Access } from "../redis/connect.js";
import { planSteps } from "../planner/plan.js";
import { makePlan } from "../plan/make.js";
import type { AccessSource, Plan } from "../plan/types.js";
import { specNodes } from "../spec/nodes.js";
import type { ClusterSpec } from "../spec/types.js";
import { TOOL_VERSION } from "../version.js";

export async function loadTopology(args: {
  observedFile?: string | undefined;
  seeds: string[];
  probe?: string[];
  access: Access;
  status: (msg: string) => void;
}): Promise<ObservedCluster> {
  if (args.observedFile) {
    args.status(`Reading the topology from ${args.observedFile} (no cluster contacted)`);
    return readSnapshot(args.observedFile);
  }
  args.status(`Observing the cluster via ${args.seeds.join(", ")} ...`);
  return observeCluster({ seeds: args.seeds, probe: args.probe ?? [], access: args.access });
}

/** Plans the spec against an observed topology. */
export function planFrom(args: { spec: ClusterSpec; specFile: string; observed: ObservedCluster; source: AccessSource; allowMassRemoval?: boolean }): Plan {
  const { steps, notes, warnings } = planSteps(args.spec, args.observed, { allowMassRemoval: args.allowMassRemoval ?? false });
  return makePlan({
    spec: args.spec,
    specFile: args.specFile,
    observed: args.observed,
    steps,
    notes,
    warnings,
    access: args.source,
    allowMassRemoval: args.allowMassRemoval ?? false,
    toolVersion: TOOL_VERSION,
  });
}

/** Observes (or reads the snapshot), then plans the spec against it. */
export async function planSpec(args: {
  spec: ClusterSpec;
  specFile: string;
  observedFile?: string | undefined;
  seeds?: string[] | undefined;
  access: Access;
  source: AccessSource;
  allowMassRemoval?: boolean;
  status: (msg: string) => void;
}): Promise<{ plan: Plan; observed: ObservedCluster }> {
  const observed = await loadTopology({
    observedFile: args.observedFile,
    seeds: args.seeds ?? args.spec.seeds,
    probe: specNodes(args.spec),
    access: args.access,
    status: args.status,
  });
  return { plan: planFrom({ ...args, observed }), observed };
}
