import { Command, Option } from "clipanion";
import { ClusterCommand, intOption, outputFile, seedsOption, writeOutput } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { writeSnapshot, serializeSnapshot } from "../observe/snapshot.js";
import { specNodes } from "../spec/nodes.js";
import { addLoad } from "./observe-input.js";
import { DEFAULT_LOAD_WINDOW_S } from "../observe/load.js";

export class SnapshotCommand extends ClusterCommand {
  static override paths = [["snapshot"]];
  static override usage = Command.Usage({
    description: "save the observed topology to a file",
    details:
      "Reads every member's own view (read-only) and saves it, so that `plan --observed FILE` can plan with no cluster reachable, e.g. in CI. With --spec, the spec's new nodes (and members written under other names) are probed too, and when the spec balances by keys or memory, what each slot holds is measured into the snapshot (the same snapshot gives the same plan).",
    examples: [
      ["Save a snapshot", "$0 snapshot --seed 127.0.0.1:7000 --out snapshot.json"],
      ["Include the nodes a spec would add", "$0 snapshot --seed 127.0.0.1:7000 --spec cluster.yaml --out snapshot.json"],
    ],
  });
  seed = Option.Array("--seed", { description: "A reachable member, HOST:PORT (repeatable; required unless --spec gives seeds)" });
  outFile = Option.String("--out", { description: "Write here instead of stdout" });
  spec = Option.String("--spec", { description: "Also probe the nodes this spec lists (and measure what its balance.by needs); its seeds, auth and TLS serve when no flag gives them" });
  loadWindow = Option.String("--load-window", { description: `With a spec balancing by cpu: seconds between the two CPU readings per slot (default ${DEFAULT_LOAD_WINDOW_S})` });

  async run(): Promise<number> {
    const out = this.outFile === undefined ? undefined : outputFile("--out", this.outFile);
    const { spec, access } = this.specAndAccess(this.spec, "shardform-snapshot");
    const observed = await observeCluster({
      seeds: seedsOption(this.seed, spec),
      probe: spec ? specNodes(spec) : [],
      access,
    });
    // A spec that balances by keys or memory needs the measurement to plan offline.
    if (spec?.balanceBy) await addLoad(observed, spec.balanceBy, access, (m) => this.status(m), intOption(this.loadWindow, "--load-window", DEFAULT_LOAD_WINDOW_S, 1));
    if (out) {
      writeOutput("--out", out, () => writeSnapshot(out, observed));
      this.say(`Saved ${observed.nodes.length} member(s) to ${out}.`);
    } else this.out(serializeSnapshot(observed));
    return 0;
  }
}
