import { existsSync, writeFileSync } from "node:fs";
import { Command, Option } from "clipanion";
import { ClusterCommand, addrOption, intOption } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { specFromTopology } from "../spec/from-topology.js";
import { InputError } from "../errors.js";

export class ImportCommand extends ClusterCommand {
  static override paths = [["import"]];
  static override usage = Command.Usage({
    description: "write a spec of the live cluster",
    details: "Reads the cluster (read-only) and prints a spec such that `shardform plan` on it reports no changes: a starting point to edit. Shards are balanced by weight when the live slots are within the threshold, else pinned as they are.",
    examples: [
      ["Print a spec of the live cluster", "$0 import --seed 127.0.0.1:7000"],
      ["Save it", "$0 import --seed 127.0.0.1:7000 --out cluster.yaml"],
    ],
  });
  seed = Option.Array("--seed", { required: true, description: "A reachable member, HOST:PORT (repeatable)" });
  outFile = Option.String("--out", { description: "Write the spec here (refuses to overwrite without --force)" });
  force = Option.Boolean("--force", false, { description: "Overwrite --out if it exists" });
  threshold = Option.String("--threshold", { description: "balance.threshold to write, percent (default 2)" });

  async run(): Promise<number> {
    const seeds = this.seed.map((s) => addrOption(s, "--seed"));
    const threshold = intOption(this.threshold, "--threshold", 2);
    const observed = await observeCluster({ seeds, credentials: this.credentials() });
    const envName = this.passwordEnv ?? (process.env["REDISCLI_AUTH"] ? "REDISCLI_AUTH" : undefined);
    const text = specFromTopology(observed, { seeds, threshold, ...(envName ? { passwordEnv: envName } : {}), ...(this.user ? { user: this.user } : {}) });
    if (this.outFile) {
      if (existsSync(this.outFile) && !this.force) throw new InputError(`${this.outFile} exists: pass --force to overwrite it`);
      writeFileSync(this.outFile, text);
      this.status(`Wrote ${this.outFile}; check it with \`shardform plan ${this.outFile}\`.`);
    } else this.out(text);
    return 0;
  }
}
