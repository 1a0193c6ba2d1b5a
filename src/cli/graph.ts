import { Command, Option } from "clipanion";
import { BaseCommand } from "./base.js";
import { readPlan } from "../plan/file.js";
import { renderGraph } from "../plan/render/graph.js";

export class GraphCommand extends BaseCommand {
  static override paths = [["graph"]];
  static override usage = Command.Usage({
    description: "print a saved plan's step graph (Graphviz DOT)",
    details: `
      Reads a plan written by \`shardform plan --out\` and prints the order apply follows as a DOT graph: an edge from a
      step to every step that needs it. The slot moves of one source->target pair are drawn as one box; --steps draws
      every step. Destructive steps are red. Contacts no cluster.
    `,
    examples: [
      ["Draw a plan as SVG (needs Graphviz)", "$0 graph plan.json | dot -Tsvg > plan.svg"],
      ["Every slot move as its own box", "$0 graph plan.json --steps"],
    ],
  });
  plan = Option.String({ name: "PLAN" });
  steps = Option.Boolean("--steps", false, { description: "One box per step, slot moves included" });

  async run(): Promise<number> {
    this.out(renderGraph(readPlan(this.plan), { steps: this.steps }));
    return 0;
  }
}
