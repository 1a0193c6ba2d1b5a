import { Command, Option } from "clipanion";
import { BaseCommand, intOption } from "../base.js";
import { outgoingRangeWarning, sandboxUp } from "../../sandbox/local.js";
import { InputError } from "../../errors.js";

export class SandboxUpCommand extends BaseCommand {
  static override paths = [["sandbox", "up"]];
  static override usage = Command.Usage({
    category: "Sandbox",
    description: "start empty cluster-enabled server nodes on loopback",
    details: `
      Starts N server processes on ports P..P+N-1 (bus ports +10000), each with its own directory, config, pidfile and
      log under --dir. They are empty and know no peers: plan and apply a spec to make a cluster of them.

      With --server it runs another build (e.g. Redis 6.2's or Valkey's server binary); the default is
      SHARDFORM_REDIS_SERVER, else redis-server on the PATH. --tls makes a CA and certificates with openssl (in DIR/tls) and serves TLS only,
      between nodes too (tls-cluster, tls-replication): connect with --cacert DIR/tls/ca.crt. --hosts spreads the nodes
      over several loopback addresses (127.0.0.1,127.0.0.2,...), to stand for several machines.
    `,
    examples: [
      ["Eight nodes on 7000-7007", "$0 sandbox up --nodes 8 --base-port 7000"],
      ["With a password from the environment", "REDIS_PASSWORD=s3cret $0 sandbox up --nodes 6 --base-port 7000 --password-env REDIS_PASSWORD"],
      ["A TLS sandbox", "$0 sandbox up --nodes 6 --base-port 7000 --tls"],
      ["Valkey, on three 'hosts'", "$0 sandbox up --nodes 6 --server ../valkey/valkey-server --hosts 127.0.0.1,127.0.0.2,127.0.0.3"],
    ],
  });
  nodes = Option.String("--nodes", "6", { description: "How many nodes (default 6)" });
  basePort = Option.String("--base-port", "7000", { description: "First port (default 7000)" });
  dir = Option.String("--dir", ".sandbox", { description: "Where nodes keep their files (default .sandbox)" });
  passwordEnv = Option.String("--password-env", { description: "Protect the nodes with the password in this environment variable" });
  server = Option.String("--server", { description: "Server binary to run (default: $SHARDFORM_REDIS_SERVER, else redis-server)" });
  tls = Option.Boolean("--tls", false, { description: "Serve TLS only, with a CA and certificates made by openssl in DIR/tls" });
  hosts = Option.String("--hosts", { description: "Comma-separated loopback addresses to spread the nodes over (default 127.0.0.1)" });
  nodeTimeout = Option.String("--node-timeout", { description: "cluster-node-timeout in ms (default 5000)" });

  async run(): Promise<number> {
    let password: string | undefined;
    if (this.passwordEnv) {
      password = process.env[this.passwordEnv];
      if (!password) throw new InputError(`environment variable ${this.passwordEnv} is not set`);
    }
    const hosts = this.hosts?.split(",").map((h) => h.trim()).filter(Boolean);
    for (const h of hosts ?? []) if (!/^127\.\d+\.\d+\.\d+$/.test(h)) throw new InputError(`--hosts takes loopback addresses (127.x.y.z), not "${h}"`);
    const nodes = intOption(this.nodes, "--nodes", 6, 1, 1000);
    const basePort = intOption(this.basePort, "--base-port", 7000, 1024, 55535);
    const warning = outgoingRangeWarning(basePort, nodes);
    if (warning) this.warn(warning);
    const sb = await sandboxUp({
      nodes,
      basePort,
      dir: this.dir,
      password,
      server: this.server,
      tls: this.tls,
      ...(hosts?.length ? { hosts } : {}),
      nodeTimeoutMs: intOption(this.nodeTimeout, "--node-timeout", 5000, 100),
    });
    const first = sb.nodes[0]!.port;
    const last = sb.nodes[sb.nodes.length - 1]!.port;
    this.out(`Started ${sb.nodes.length} node(s) of ${sb.server} on ${(hosts ?? ["127.0.0.1"]).join(",")} ports ${first}-${last} (pids ${sb.nodes.map((n) => n.pid).join(" ")}) in ${sb.dir}.\n`);
    if (sb.tls) this.out(`TLS only: connect with --cacert ${sb.tls.ca} (client certificate: --cert ${sb.tls.clientCert} --key ${sb.tls.clientKey}).\n`);
    this.out(`Stop them with: shardform sandbox down --dir ${this.dir}\n`);
    return 0;
  }
}
