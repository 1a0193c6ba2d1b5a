import { Builtins, Cli } from "clipanion";
import { TOOL_VERSION } from "../version.js";
import { ApplyCommand } from "./apply.js";
import { CheckCommand } from "./check.js";
import { CompletionCommand } from "./completion.js";
import { FmtCommand } from "./fmt.js";
import { GraphCommand } from "./graph.js";
import { ForceUnlockCommand } from "./force-unlock.js";
import { ImportCommand } from "./import.js";
import { PlanCommand } from "./plan.js";
import { PopulateCommand } from "./populate.js";
import { SandboxDownCommand } from "./sandbox/down.js";
import { SandboxCommand } from "./sandbox/index.js";
import { SandboxUpCommand } from "./sandbox/up.js";
import { ShowCommand } from "./show.js";
import { SnapshotCommand } from "./snapshot.js";
import { ValidateCommand } from "./validate.js";
import { VersionCommand } from "./version.js";

export const commands = [
  ValidateCommand,
  FmtCommand,
  PlanCommand,
  ShowCommand,
  GraphCommand,
  ApplyCommand,
  ImportCommand,
  SnapshotCommand,
  CheckCommand,
  ForceUnlockCommand,
  PopulateCommand,
  SandboxCommand,
  SandboxUpCommand,
  SandboxDownCommand,
  CompletionCommand,
  VersionCommand,
];

/** What an option's value is, for help texts (clipanion writes "#0" for every value). */
const PLACEHOLDERS: Record<string, string> = {
  "--seed": "HOST:PORT",
  "--out": "FILE",
  "--observed": "FILE",
  "--history": "PLAN",
  "--plan": "PLAN",
  "--spec": "SPEC",
  "--state-dir": "DIR",
  "--lock-dir": "DIR",
  "--dir": "DIR",
  "--server": "PATH",
  "--password-env": "VAR",
  "--password-file": "FILE",
  "--user": "NAME",
  "--cacert": "FILE",
  "--cert": "FILE",
  "--key": "FILE",
  "--sni": "NAME",
  "--hosts": "ADDRS",
  "--prefix": "PREFIX",
  "--migration": "auto|atomic|keys",
  "--balance-by": "slots|keys|memory|cpu",
  "--migrate-timeout": "MS",
  "--wait-timeout": "S",
  "--lock-timeout": "S",
  "--settle-timeout": "S",
  "--load-window": "S",
  "--threshold": "PERCENT",
};

/** Each option's value named ("--seed HOST:PORT") where clipanion writes "#0". */
function namedValues(text: string): string {
  // Keep the option table's columns: the name takes the room of "#0" and of the spaces after it.
  return text.replace(/(--[a-z][a-z-]*)((?: #\d+)+)( *)/g, (_m, opt: string, vals: string, pad: string) => {
    const value = ` ${PLACEHOLDERS[opt] ?? "N"}`;
    const room = vals.length + pad.length;
    return `${opt}${value}${pad.length === 0 ? "" : " ".repeat(Math.max(1, room - value.length))}`;
  });
}

/** A Cli whose help and usage errors name each option's value ("--seed HOST:PORT"), not "#0". */
class ShardformCli extends Cli {
  override usage(...args: Parameters<Cli["usage"]>): string {
    return namedValues(super.usage(...args));
  }

  override error(...args: Parameters<Cli["error"]>): string {
    return namedValues(super.error(...args));
  }
}

export function makeCli(opts: { colors?: boolean } = {}): Cli {
  const cli = new ShardformCli({ binaryLabel: "shardform", binaryName: "shardform", binaryVersion: TOOL_VERSION, ...(opts.colors === undefined ? {} : { enableColors: opts.colors }) });
  for (const c of commands) cli.register(c);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  return cli;
}

/**
 * "--window -1" would read "-1" as an option: join a negative number to the option before it, so that
 * the option's own check reports the value ("--window must be a whole number >= 1, got -1").
 */
export function joinNegativeNumbers(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith("--") && !a.includes("=") && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const noColor = argv.includes("--no-color") || (process.env["NO_COLOR"] ?? "") !== "" || !process.stdout.isTTY;
  // clipanion picks the colours of --help when the Cli is made, not from the run's context.
  return makeCli({ colors: !noColor }).run(joinNegativeNumbers(argv), { ...Cli.defaultContext, ...(noColor ? { colorDepth: 1 } : {}) });
}
