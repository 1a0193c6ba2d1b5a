import { existsSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option, UsageError } from "clipanion";
import { ClusterCommand, intOption, outputFile, seedsOption, writeOutput } from "./base.js";
import { DEFAULT_SETTLE_S, observeSettled } from "./observe-input.js";
import { specFromTopology } from "../spec/from-topology.js";
import { SCHEMA_URL } from "../spec/load.js";
import { ClusterStateError, InputError } from "../errors.js";
import { unsettled } from "../observe/disagreements.js";

export class ImportCommand extends ClusterCommand {
  static override paths = [["import"]];
  static override usage = Command.Usage({
    description: "write a spec of the live cluster",
    details: `
      Reads the cluster (read-only) and prints a spec such that \`shardform plan\` on it reports no changes: a starting
      point to edit. Shards are balanced by weight when the live slots are within the threshold, else pinned as they are.
      Nodes are written the way you reached the cluster: with --seed redis-a.example:7000, members that announce the
      address that name resolves to are written with the name. A password or TLS files used to connect become the
      spec's auth and tls sections (the variable's name or the file's path, never the password).
    `,
    examples: [
      ["Print a spec of the live cluster", "$0 import --seed 127.0.0.1:7000"],
      ["Save it", "$0 import --seed 127.0.0.1:7000 --out cluster.yaml"],
      ["A spec that balances by memory", "$0 import --seed 127.0.0.1:7000 --balance-by memory --out cluster.yaml"],
      ["Import again, reaching the cluster as a spec does", "$0 import --spec cluster.yaml --out cluster.new.yaml"],
    ],
  });
  seed = Option.Array("--seed", { description: "A reachable member, HOST:PORT (repeatable; required unless --spec gives seeds)" });
  spec = Option.String("--spec", { description: "Take the seeds, auth and TLS from this spec (flags given win), e.g. to import a cluster again" });
  outFile = Option.String("--out", { description: "Write the spec here (refuses to overwrite without --force)" });
  force = Option.Boolean("--force", false, { description: "Overwrite --out if it exists" });
  threshold = Option.String("--threshold", { description: "balance.threshold to write, percent from 0 to 100 (default 2; 5 with --balance-by keys, memory or cpu)" });
  balanceBy = Option.String("--balance-by", {
    description: "balance.by to write: slots (default), keys, memory or cpu. By keys or memory, shards whose DBSIZE or used_memory_dataset are within the threshold get weights, else their slots are pinned as they are",
  });
  settleTimeout = Option.String("--settle-timeout", { description: `Seconds to wait for members that disagree to converge first (default ${DEFAULT_SETTLE_S})` });

  async run(): Promise<number> {
    const by = this.balanceBy ?? "slots";
    if (by !== "slots" && by !== "keys" && by !== "memory" && by !== "cpu") throw new UsageError(`--balance-by must be slots, keys, memory or cpu, got "${by}"`);
    const threshold = this.threshold === undefined ? (by === "slots" ? 2 : 5) : Number(this.threshold);
    if (this.threshold !== undefined && (this.threshold.trim() === "" || !Number.isFinite(threshold) || threshold < 0 || threshold > 100)) {
      throw new UsageError(`--threshold must be a percentage from 0 to 100, got "${this.threshold}"`);
    }
    if (this.outFile) outputFile("--out", this.outFile);
    if (this.outFile && existsSync(this.outFile) && !this.force) throw new InputError(`${this.outFile} exists: pass --force to overwrite it`);
    const { spec, access, source } = this.specAndAccess(this.spec, "shardform-import");
    const seeds = seedsOption(this.seed, spec);
    const observed = await observeSettled({ seeds, access, leases: false }, intOption(this.settleTimeout, "--settle-timeout", DEFAULT_SETTLE_S, 0) * 1000, (m) => this.say(m));
    const u = unsettled(observed.nodes);
    if (u.length > 0) throw new ClusterStateError(`the cluster has not settled (${u.join("; ")}): run \`shardform check\`, and import again when it reports no disagreement`);
    // Write members under the name the user reached them by (a seed alias), where that name covers their address.
    const hostNames = new Map<string, string>();
    const host = (addr: string): string => addr.slice(0, addr.lastIndexOf(":"));
    for (const alias of observed.aliases) {
      const member = observed.nodes.find((n) => n.id === alias.id);
      if (member && seeds.includes(alias.addr)) hostNames.set(host(member.addr), host(alias.addr));
    }
    // Paths in the spec are relative to it: the schema, and TLS files given on the command line.
    const dir = this.outFile ? dirname(resolve(this.outFile)) : process.cwd();
    const rel = (p: string): string => {
      const r = relative(dir, p);
      return isAbsolute(r) ? r : r.startsWith(".") ? r : `./${r}`;
    };
    const tls = source.tls ? Object.fromEntries(Object.entries(source.tls).map(([k, v]) => [k, (k === "ca" || k === "cert" || k === "key") && typeof v === "string" ? rel(v) : v])) : undefined;
    const auth = source.passwordFile ? { passwordFile: rel(source.passwordFile) } : {};
    const text = specFromTopology(observed, { seeds, threshold, by, access: { ...source, ...auth, ...(tls ? { tls } : {}) }, hostNames, schemaRef: rel(fileURLToPath(SCHEMA_URL)) });
    if (this.outFile) {
      const file = this.outFile;
      writeOutput("--out", file, () => writeFileSync(file, text));
      this.say(`Wrote ${this.outFile}; check it with \`shardform plan ${this.outFile}\`.`);
    } else this.out(text);
    return 0;
  }
}
