import { Command, Option } from "clipanion";
import { ClusterCommand, addrOption, intOption } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { populate } from "../testdata/populate.js";

export class PopulateCommand extends ClusterCommand {
  static override paths = [["populate"]];
  static override usage = Command.Usage({
    description: "write deterministic test keys",
    details: "Writes keys PREFIX0000000000.. spread over all slots, pipelined per master and masters in parallel. Values are derived from the key's number, so they can be verified later.",
    examples: [["Write 100,000 keys", "$0 populate --seed 127.0.0.1:7000 --keys 100000"]],
  });
  seed = Option.String("--seed", { required: true, description: "A reachable member, HOST:PORT" });
  keys = Option.String("--keys", { required: true, description: "How many keys" });
  valueSize = Option.String("--value-size", { description: "Bytes per value (default 16)" });
  prefix = Option.String("--prefix", "key:", { description: "Key prefix (default key:)" });

  async run(): Promise<number> {
    const n = intOption(this.keys, "--keys", 0, 1);
    const credentials = this.credentials();
    const observed = await observeCluster({ seeds: [addrOption(this.seed, "--seed")], credentials });
    const started = performance.now();
    let lastShown = 0;
    const written = await populate(observed, {
      keys: n,
      prefix: this.prefix,
      valueSize: intOption(this.valueSize, "--value-size", 16, 1),
      credentials,
      onProgress: (w) => {
        if (w - lastShown >= 50_000 || w === n) {
          lastShown = w;
          this.status(`  ${w}/${n} keys`);
        }
      },
    });
    const secs = (performance.now() - started) / 1000;
    this.out(`Wrote ${written} keys in ${secs.toFixed(2)} s (${Math.round(written / secs)} keys/s).\n`);
    return 0;
  }
}
