import { Command, Option } from "clipanion";
import { ClusterCommand, addrOption, intOption, migrationOption, outputFile, planFormat, writeOutput } from "./base.js";
import { DEFAULT_SETTLE_S, planSpec, readHistory } from "./observe-input.js";
import { loadSpec } from "../spec/load.js";
import { writePlan } from "../plan/file.js";
import { interruptedLastPlan, interruptedNote } from "./last-plan.js";
import { renderPlan } from "../plan/render/index.js";
import { DEFAULT_LOAD_WINDOW_S } from "../observe/load.js";

export class PlanCommand extends ClusterCommand {
  static override paths = [["plan"]];
  static override usage = Command.Usage({
    description: "compute the steps that take the cluster to the spec",
    details: `
      Reads the live cluster (or a snapshot with --observed), diffs it against SPEC and prints the plan.
      Nothing on the cluster is changed: every connection is read-only.

      A plan that removes half or more of the masters that own slots (drains them or forgets them) is
      refused unless --allow-mass-removal is given: a wrong file or a bad merge must not drain a cluster.
      The permission is recorded in the plan. Nodes listed under cluster.protect are never removed.

      Keys of a slot on a master that does not own it cannot be read by clients, and plan refuses them,
      unless an earlier plan given with --history moved that slot from their node's shard to its owner
      (a shard failed over mid-move, say): then a move-stray-keys step takes them to the owner, keeping
      the owner's copy of a key both hold. The step is shown as destructive.

      The plan records where the password and TLS files come from (names and paths, never the secret),
      so that \`apply PLAN\` uses the same sources.

      Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error, 2 changes present (only with --detailed-exitcode).
    `,
    examples: [
      ["Show what it would take to reach the spec", "$0 plan cluster.yaml"],
      ["Save the plan for review and apply", "$0 plan cluster.yaml --out plan.json"],
      ["Post as a PR comment; fail CI on drift", "$0 plan cluster.yaml --markdown --detailed-exitcode > plan.md"],
      ["Plan from a saved snapshot, no cluster needed", "$0 plan cluster.yaml --observed snapshot.json"],
      ["Remove two of four masters on purpose", "$0 plan scale-in.yaml --allow-mass-removal --out plan.json"],
      ["Move every slot key by key, even on Valkey 9 (no write pause on the source at each hand-off)", "$0 plan cluster.yaml --migration keys --out plan.json"],
      ["Repair keys an earlier plan's moves left behind", "$0 plan cluster.yaml --history old-plan.json --out plan.json"],
    ],
  });
  spec = Option.String({ name: "SPEC" });
  outFile = Option.String("--out", { description: "Write the plan (JSON) to this file for `shardform show` and `apply`" });
  json = Option.Boolean("--json", false, { description: "Print the plan as JSON (the plan file's content)" });
  markdown = Option.Boolean("--markdown", false, { description: "Print Markdown for a pull-request comment" });
  detailedExitcode = Option.Boolean("--detailed-exitcode", false, { description: "Exit 2 when the plan has changes, 0 when none" });
  observed = Option.String("--observed", { description: "Plan from a snapshot file (from `shardform snapshot`) instead of the live cluster" });
  seed = Option.Array("--seed", { description: "Reach the cluster through this HOST:PORT instead of the spec's seeds (repeatable)" });
  allowMassRemoval = Option.Boolean("--allow-mass-removal", false, { description: "Permit removing half or more of the masters that own slots (recorded in the plan)" });
  migration = Option.String("--migration", {
    description: "How slots move: auto (default: the server's own slot migration where source and target both have it, Valkey 9+; key by key elsewhere), atomic (refused where a pair lacks it), keys",
  });
  history = Option.Array("--history", { description: "An earlier plan whose slot moves explain keys left on a node that no longer owns their slot (repeatable)" });
  loadWindow = Option.String("--load-window", { description: `With balance.by: cpu, seconds between the two CPU readings per slot (default ${DEFAULT_LOAD_WINDOW_S})` });
  settleTimeout = Option.String("--settle-timeout", { description: `Seconds to wait for members that disagree about roles or slots to converge before planning (default ${DEFAULT_SETTLE_S})` });

  async run(): Promise<number> {
    const format = planFormat(this.json, this.markdown);
    if (this.outFile) outputFile("--out", this.outFile);
    const seeds = this.seed?.length ? this.seed.map((s) => addrOption(s, "--seed")) : undefined;
    const settleMs = intOption(this.settleTimeout, "--settle-timeout", DEFAULT_SETTLE_S, 0) * 1000;
    const { spec } = loadSpec(this.spec);
    const { access, source } = this.access({ spec, specFile: this.spec }, "shardform-plan", !this.observed);
    const { plan } = await planSpec({
      spec,
      specFile: this.spec,
      observedFile: this.observed,
      seeds,
      access,
      source,
      allowMassRemoval: this.allowMassRemoval,
      history: readHistory(this.history ?? []),
      migration: migrationOption(this.migration),
      loadWindowS: intOption(this.loadWindow, "--load-window", DEFAULT_LOAD_WINDOW_S, 1),
      status: (m) => this.status(m),
      say: (m) => this.say(m),
      settleMs,
    });
    this.out(renderPlan(plan, format, this.useColor()));
    const interrupted = interruptedLastPlan(this.spec);
    if (interrupted) {
      this.say(interruptedNote(interrupted));
    }
    if (this.outFile) {
      const file = this.outFile;
      writeOutput("--out", file, () => writePlan(file, plan));
      const msg = plan.summary.changes
        ? `Saved the plan to ${this.outFile}. To perform exactly these actions, run: shardform apply ${this.outFile}`
        : `Saved the plan to ${this.outFile} (it has no changes).`;
      if (format === "human") this.out(`\n${msg}\n`);
      else this.status(msg);
    }
    return this.detailedExitcode && plan.summary.changes ? 2 : 0;
  }
}
