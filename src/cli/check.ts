import { Command, Option, UsageError } from "clipanion";
import { ClusterCommand, seedsOption } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { healthReport, renderHealth } from "../check/report.js";
import { ShardformError, errorCode } from "../errors.js";
import { interruptedLastPlan, interruptedNote, resumeCommand } from "./last-plan.js";

export class CheckCommand extends ClusterCommand {
  static override paths = [["check"]];
  static override usage = Command.Usage({
    description: "report the cluster's health",
    details: `
      Overview, a line per node, slot coverage, open slots, keys held in slots their node does not own, members whose
      views disagree, members that are down, applies in progress, and the slot imbalance (largest deviation of a master
      from an equal share: 0-2% excellent, 2-5% good, 5-10% acceptable, over 10% needs rebalancing; information only,
      since check has no spec). Warnings (e.g. a replica on the same host as its master, or a replica in its first sync,
      with how far it got) do not change the exit code; a replica whose link is down with no sync running is a problem.
      Read-only: it reports the state at once, without waiting for the cluster to settle. With --spec, an interrupted
      apply of the spec's last plan (SPEC.plan.json beside it, as apply SPEC writes it) is named with the command that
      resumes it (interruptedApply in the JSON).

      Exit 0 when healthy, 1 when not (or when the cluster cannot be read). With --json the output is always JSON,
      errors included; an error has a stable code (error.code, e.g. NODE_UNREACHABLE).
    `,
    examples: [
      ["Check a cluster", "$0 check --seed 127.0.0.1:7000"],
      ["Machine-readable", "$0 check --seed 127.0.0.1:7000 --json"],
      ["Seeds, auth and TLS from a spec", "$0 check --spec cluster.yaml"],
    ],
  });
  seed = Option.Array("--seed", { description: "A reachable member, HOST:PORT (repeatable; required unless --spec gives seeds)" });
  spec = Option.String("--spec", { description: "Take the seeds, auth and TLS from this spec (flags given win)" });
  json = Option.Boolean("--json", false, { description: "Print the report as JSON (always JSON, errors included)" });

  /** check prints its own JSON report on an error (healthy: false). */
  override jsonOutput(): boolean {
    return false;
  }

  async run(): Promise<number> {
    try {
      const { spec, access } = this.specAndAccess(this.spec, "shardform-check");
      const observed = await observeCluster({ seeds: seedsOption(this.seed, spec), access });
      const report = healthReport(observed);
      // An interrupted apply of the spec's last plan: where it is and the command that resumes it.
      const interrupted = this.spec ? interruptedLastPlan(this.spec) : null;
      const shown = interrupted ? { ...report, interruptedApply: { plan: interrupted, resume: resumeCommand(interrupted) } } : report;
      this.out(this.json ? JSON.stringify(shown, null, 2) + "\n" : renderHealth(report, this.useColor()));
      if (interrupted && !this.json) this.say(interruptedNote(interrupted));
      return report.healthy ? 0 : 1;
    } catch (err) {
      if (this.json && (err instanceof ShardformError || err instanceof UsageError)) {
        const kind = err instanceof UsageError ? "UsageError" : err.name;
        this.out(JSON.stringify({ healthy: false, error: { kind, code: errorCode(kind), message: err.message } }, null, 2) + "\n");
      }
      throw err;
    }
  }
}
