import { Command, Option } from "clipanion";
import { BaseCommand } from "../base.js";
import { sandboxDown } from "../../sandbox/local.js";

export class SandboxDownCommand extends BaseCommand {
  static override paths = [["sandbox", "down"]];
  static override usage = Command.Usage({
    category: "Sandbox",
    description: "stop the sandbox's redis-server processes",
    details: "Stops exactly the PIDs recorded by `sandbox up` in --dir, then removes the directory (unless --keep).",
    examples: [["Stop the sandbox", "$0 sandbox down"]],
  });
  dir = Option.String("--dir", ".sandbox", { description: "The sandbox directory (default .sandbox)" });
  keep = Option.Boolean("--keep", false, { description: "Keep data files and logs" });

  async run(): Promise<number> {
    const stopped = await sandboxDown({ dir: this.dir, keepFiles: this.keep });
    this.out(`Stopped ${stopped.length} node(s)${stopped.length ? ` (ports ${stopped.join(", ")})` : ""}.\n`);
    return 0;
  }
}
