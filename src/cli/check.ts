import { Command, Option } from "clipanion";
import { ClusterCommand, addrOption } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { healthReport, renderHealth } from "../check/report.js";

export class CheckCommand extends ClusterCommand {
  static override paths = [["check"]];
  static override usage = Command.Usage({
    description: "report the cluster's health",
    details: `
      Overview, a line per node, slot coverage, open slots, members whose views disagree, and the slot imbalance
      (largest deviation of a master from an equal share: 0-2% excellent, 2-5% good, 5-10% acceptable, over 10% needs rebalancing).
      Read-only. Exit 0 when healthy, 1 when not.
    `,
    examples: [
      ["Check a cluster", "$0 check --seed 127.0.0.1:7000"],
      ["Machine-readable", "$0 check --seed 127.0.0.1:7000 --json"],
    ],
  });
  seed = Option.Array("--seed", { required: true, description: "A reachable member, HOST:PORT (repeatable)" });
  json = Option.Boolean("--json", false, { description: "Print the report as JSON" });

  async run(): Promise<number> {
    const observed = await observeCluster({ seeds: this.seed.map((s) => addrOption(s, "--seed")), credentials: this.credentials() });
    const report = healthReport(observed);
    this.out(this.json ? JSON.stringify(report, null, 2) + "\n" : renderHealth(report, this.useColor()));
    return report.healthy ? 0 : 1;
  }
}
