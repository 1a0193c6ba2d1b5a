/** Where a command's topology comes from: a live cluster or a saved snapshot. */
import { observeCluster } from "../observe/observe.js";
import { readSnapshot } from "../observe/snapshot.js";
import type { ObservedCluster } from "../observe/types.js";
import type { Credentials } from "../redis/connect.js";

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
