import { Command } from "clipanion";
import { BaseCommand } from "./base.js";
import { TOOL_VERSION } from "../version.js";
import { PLAN_FORMAT_VERSION } from "../plan/types.js";
import { SNAPSHOT_FORMAT_VERSION } from "../observe/types.js";
import { JOURNAL_FORMAT_VERSION } from "../executor/journal.js";

export class VersionCommand extends BaseCommand {
  static override paths = [["version"]];
  static override usage = Command.Usage({
    description: "print shardform's version and the file formats it reads and writes",
    examples: [["Print the version", "$0 version"]],
  });

  async run(): Promise<number> {
    this.out(`shardform ${TOOL_VERSION} (Node.js ${process.versions.node}); plan format ${PLAN_FORMAT_VERSION}, snapshot format ${SNAPSHOT_FORMAT_VERSION}, checkpoint format ${JOURNAL_FORMAT_VERSION}\n`);
    return 0;
  }
}
