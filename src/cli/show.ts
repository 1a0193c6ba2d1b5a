import { Command, Option } from "clipanion";
import { BaseCommand, planFormat } from "./base.js";
import { readPlan } from "../plan/file.js";
import { renderPlan } from "../plan/render/index.js";

export class ShowCommand extends BaseCommand {
  static override paths = [["show"]];
  static override usage = Command.Usage({
    description: "print a saved plan",
    details: "Reads a plan written by `shardform plan --out`, checks that it was not edited, and prints it. Contacts no cluster.",
    examples: [
      ["Review a saved plan", "$0 show plan.json"],
      ["Render a saved plan for a PR comment", "$0 show plan.json --markdown"],
    ],
  });
  plan = Option.String({ name: "PLAN" });
  json = Option.Boolean("--json", false, { description: "Print the plan as JSON" });
  markdown = Option.Boolean("--markdown", false, { description: "Print Markdown for a pull-request comment" });

  async run(): Promise<number> {
    const format = planFormat(this.json, this.markdown);
    const plan = readPlan(this.plan);
    this.out(renderPlan(plan, format, this.useColor()));
    return 0;
  }
}
