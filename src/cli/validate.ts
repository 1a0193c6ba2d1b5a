import { Command, Option } from "clipanion";
import { BaseCommand } from "./base.js";
import { loadSpec } from "../spec/load.js";
import { countSlots } from "../slots.js";

export class ValidateCommand extends BaseCommand {
  static override paths = [["validate"]];
  static override usage = Command.Usage({
    description: "check a spec file without contacting the cluster",
    details: "Checks YAML syntax, the schema (schemas/cluster.schema.json) and the spec's meaning. Every problem is reported with file:line:col. Exit 0 when valid, 1 otherwise.",
    examples: [["Validate the example spec", "$0 validate cluster.example.yaml"]],
  });
  spec = Option.String({ name: "SPEC" });

  async run(): Promise<number> {
    const { spec } = loadSpec(this.spec);
    const nodes = spec.shards.reduce((n, s) => n + 1 + s.replicas.length, 0);
    const pinned = spec.shards.reduce((n, s) => n + (s.slots ? countSlots(s.slots) : 0), 0);
    this.out(`${this.spec} is valid: ${spec.shards.length} shard(s), ${nodes} node(s)${pinned ? `, ${pinned} pinned slot(s)` : ""}.\n`);
    return 0;
  }
}
