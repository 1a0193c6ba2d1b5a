import { Command, Option } from "clipanion";
import { BaseCommand, intOption } from "../base.js";
import { sandboxUp } from "../../sandbox/local.js";
import { InputError } from "../../errors.js";

export class SandboxUpCommand extends BaseCommand {
  static override paths = [["sandbox", "up"]];
  static override usage = Command.Usage({
    category: "Sandbox",
    description: "start empty cluster-enabled redis-server nodes on 127.0.0.1",
    details: "Starts N redis-server processes on ports P..P+N-1 (bus ports +10000), each with its own directory, pidfile and log under --dir. They are empty and know no peers: plan and apply a spec to make a cluster of them.",
    examples: [
      ["Eight nodes on 7000-7007", "$0 sandbox up --nodes 8 --base-port 7000"],
      ["With a password from the environment", "REDIS_PASSWORD=s3cret $0 sandbox up --nodes 6 --base-port 7000 --password-env REDIS_PASSWORD"],
    ],
  });
  nodes = Option.String("--nodes", "6", { description: "How many nodes (default 6)" });
  basePort = Option.String("--base-port", "7000", { description: "First port (default 7000)" });
  dir = Option.String("--dir", ".sandbox", { description: "Where nodes keep their files (default .sandbox)" });
  passwordEnv = Option.String("--password-env", { description: "Protect the nodes with the password in this environment variable" });

  async run(): Promise<number> {
    let password: string | undefined;
    if (this.passwordEnv) {
      password = process.env[this.passwordEnv];
      if (!password) throw new InputError(`environment variable ${this.passwordEnv} is not set`);
    }
    const sb = await sandboxUp({
      nodes: intOption(this.nodes, "--nodes", 6, 1),
      basePort: intOption(this.basePort, "--base-port", 7000, 1),
      dir: this.dir,
      password,
    });
    const first = sb.nodes[0]!.port;
    const last = sb.nodes[sb.nodes.length - 1]!.port;
    this.out(`Started ${sb.nodes.length} redis-server node(s) on 127.0.0.1:${first}-${last} (pids ${sb.nodes.map((n) => n.pid).join(" ")}) in ${sb.dir}.\n`);
    this.out(`Stop them with: shardform sandbox down --dir ${this.dir}\n`);
    return 0;
  }
}
