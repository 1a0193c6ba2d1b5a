/** Where a command's topology comes from (a live cluster or a saved snapshot), and the plan made from it. */
import { observeCluster } from "../observe/observe.js";
import { readSnapshot } from "../observe/snapshot.js";
import type { ObservedCluster } from "../observe/types.js";
import type { Credentials } from "../redis/connect.js";
import { planSteps } from "../planner/plan.js";
import { makePlan } from "../plan/make.js";
import type { Plan } from "../plan/types.js";
import { specNodes } from "../spec/nodes.js";
import type { ClusterSpec } from "../spec/types.js";
import { TOOL_VERSION } from "../version.js";

export async function loadTopology(args: {
  observedFile?: string | undefined;
  seeds: string[];
  probe?: string[];
  credentials: Credentials;
  status: (msg: string) => void;
}): Promise<ObservedCluster> {
  if (args.observedFile) {
    args.status(`Reading the topology from ${args.observedFile} (no cluster contacted)`);
    return readSnapshot(args.observedFile);
  }
  args.status(`Observing the cluster via ${args.seeds.join(", ")} ...`);
  return observeCluster({ seeds: args.seeds, probe: args.probe ?? [], credentials: args.credentials });
}

/** Observes (or reads the snapshot), then plans the spec against it. */
export async function planSpec(args: {
  spec: ClusterSpec;
  specFile: string;
  observedFile?: string | undefined;
  seeds?: string[] | undefined;
  credentials: Credentials;
  status: (msg: string) => void;
}): Promise<Plan> {
  const observed = await loadTopology({
    observedFile: args.observedFile,
    seeds: args.seeds ?? args.spec.seeds,
    probe: specNodes(args.spec),
    credentials: args.credentials,
    status: args.status,
  });
  const { steps, notes } = planSteps(args.spec, observed);
  return makePlan({ spec: args.spec, specFile: args.specFile, observed, steps, notes, toolVersion: TOOL_VERSION });
}
