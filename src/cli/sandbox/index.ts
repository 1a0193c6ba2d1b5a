import { Command } from "clipanion";
import { BaseCommand } from "../base.js";

/** `shardform sandbox` (and `sandbox --help`): what the sandbox commands are. */
export class SandboxCommand extends BaseCommand {
  static override paths = [["sandbox"]];
  static override usage = Command.Usage({
    category: "Sandbox",
    description: "local server processes to try shardform on",
    details: `
      \`sandbox up\` starts empty cluster-enabled server processes on loopback ports, each with its own directory, config,
      pidfile and log; \`sandbox down\` stops exactly those processes. Run \`shardform sandbox up --help\` or
      \`shardform sandbox down --help\` for their options.
    `,
    examples: [
      ["Eight nodes on 7000-7007", "$0 sandbox up --nodes 8 --base-port 7000"],
      ["Stop them", "$0 sandbox down"],
    ],
  });

  async run(): Promise<number> {
    this.out(this.cli.usage(SandboxCommand, { detailed: true }));
    return 0;
  }
}
