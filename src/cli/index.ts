import { Builtins, Cli } from "clipanion";
import { TOOL_VERSION } from "../version.js";
import { ApplyCommand } from "./apply.js";
import { CheckCommand } from "./check.js";
import { ForceUnlockCommand } from "./force-unlock.js";
import { ImportCommand } from "./import.js";
import { PlanCommand } from "./plan.js";
import { PopulateCommand } from "./populate.js";
import { SandboxDownCommand } from "./sandbox/down.js";
import { SandboxUpCommand } from "./sandbox/up.js";
import { ShowCommand } from "./show.js";
import { SnapshotCommand } from "./snapshot.js";
import { ValidateCommand } from "./validate.js";

export const commands = [
  ValidateCommand,
  PlanCommand,
  ShowCommand,
  ApplyCommand,
  ImportCommand,
  SnapshotCommand,
  CheckCommand,
  ForceUnlockCommand,
  PopulateCommand,
  SandboxUpCommand,
  SandboxDownCommand,
];

export function makeCli(): Cli {
  const cli = new Cli({ binaryLabel: "shardform", binaryName: "shardform", binaryVersion: TOOL_VERSION });
  for (const c of commands) cli.register(c);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  return cli;
}

export async function main(argv: string[]): Promise<number> {
  const noColor =
    argv.includes("--no-color") || (process.env["NO_COLOR"] ?? "") !== "" || !process.stdout.isTTY;
  return makeCli().run(argv, { ...Cli.defaultContext, ...(noColor ? { colorDepth: 1 } : {}) });
}
