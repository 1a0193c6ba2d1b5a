import { Command, Option, UsageError } from "clipanion";
import { BaseCommand } from "./base.js";
import { readPlan } from "../plan/file.js";
import { renderHuman } from "../plan/render/human.js";
import { renderJson } from "../plan/render/json.js";
import { renderMarkdown } from "../plan/render/markdown.js";

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
    if (this.json && this.markdown) throw new UsageError("--json and --markdown cannot be used together: pick one");
    const plan = readPlan(this.plan);
    if (this.json) this.out(renderJson(plan));
    else if (this.markdown) this.out(renderMarkdown(plan));
    else this.out(renderHuman(plan, { color: this.useColor() }));
    return 0;
  }
}
