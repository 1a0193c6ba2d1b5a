import { Command, Option, UsageError } from "clipanion";
import { ClusterCommand, intOption, seedsOption } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { MAX_TEST_KEYS, populate, verifyTestKeys } from "../testdata/populate.js";

export class PopulateCommand extends ClusterCommand {
  static override paths = [["populate"]];
  static override usage = Command.Usage({
    description: "write deterministic test keys",
    details: `
      Writes keys PREFIX0000000000.. spread over all slots, as raw pipelined RESP on one connection per master, masters
      in parallel, with a progress bar on a terminal. Values are derived from the key's number, so --verify can read every
      key back and report any that is missing or wrong (exit 1), e.g. after a migration. --verify follows redirections
      like a cluster client (MOVED, and ASK for a slot being moved), so it may run during an apply.

      On a server with several databases in cluster mode (Valkey 9, cluster-databases > 1), --db 0,1 writes the same
      keys into each database listed, and --verify reads each of them back.
    `,
    examples: [
      ["Write 100,000 keys", "$0 populate --seed 127.0.0.1:7000 --keys 100000"],
      ["Check that all of them are still there", "$0 populate --seed 127.0.0.1:7000 --keys 100000 --verify"],
      ["The same keys in databases 0 and 1 (Valkey 9)", "$0 populate --seed 127.0.0.1:7000 --keys 100000 --db 0,1"],
    ],
  });
  seed = Option.String("--seed", { description: "A reachable member, HOST:PORT (required)" });
  keys = Option.String("--keys", { description: "How many keys (required)" });
  valueSize = Option.String("--value-size", { description: "Bytes per value (default 16)" });
  prefix = Option.String("--prefix", "key:", { description: "Key prefix (default key:)" });
  db = Option.String("--db", { description: "Databases to write to (or read from), comma-separated (default 0)" });
  verify = Option.Boolean("--verify", false, { description: "Read the keys back instead of writing them; exit 1 if any is missing or wrong" });

  async run(): Promise<number> {
    if (this.keys === undefined) throw new UsageError("--keys N is required: how many test keys to write (or, with --verify, to read back)");
    const n = intOption(this.keys, "--keys", 0, 1, MAX_TEST_KEYS);
    const valueSize = intOption(this.valueSize, "--value-size", 16, 1, 512 * 1024 * 1024);
    const seed = seedsOption(this.seed === undefined ? undefined : [this.seed])[0]!;
    const { access } = this.access(null, "shardform-populate");
    const dbs = databasesOption(this.db);
    const observed = await observeCluster({ seeds: [seed], access, leases: false });
    const inDb = (db: number): string => (dbs.length > 1 || db !== 0 ? ` in database ${db}` : "");
    if (this.verify) {
      let ok = true;
      for (const db of dbs) {
        const r = await verifyTestKeys(observed, { keys: n, prefix: this.prefix, valueSize, access, db });
        ok &&= r.missing.length === 0 && r.wrong.length === 0;
        this.out(`Checked ${r.checked} keys${inDb(db)}: ${r.missing.length} missing, ${r.wrong.length} with a wrong value.\n`);
        for (const k of [...r.missing.slice(0, 10)]) this.out(`  missing: ${k}\n`);
        for (const k of [...r.wrong.slice(0, 10)]) this.out(`  wrong:   ${k}\n`);
      }
      return ok ? 0 : 1;
    }
    for (const db of dbs) {
      const started = performance.now();
      const bar = progressBar(this.context.stderr, n, started);
      const written = await populate(observed, { keys: n, prefix: this.prefix, valueSize, access, db, onProgress: bar.update });
      bar.end();
      const secs = (performance.now() - started) / 1000;
      this.out(`Wrote ${written} keys${inDb(db)} in ${secs.toFixed(2)} s (${Math.round(written / secs)} keys/s).\n`);
    }
    return 0;
  }
}

/** `--db 0,1`: distinct database numbers, in order. */
function databasesOption(raw: string | undefined): number[] {
  if (raw === undefined) return [0];
  const dbs = raw.split(",").map((x) => x.trim());
  if (dbs.some((x) => !/^\d{1,5}$/.test(x))) throw new UsageError(`--db expects database numbers separated by commas, like 0,1; got ${JSON.stringify(raw)}`);
  return [...new Set(dbs.map(Number))];
}

/** A progress bar on a terminal (redrawn at most 10 times a second); nothing otherwise. */
function progressBar(stream: NodeJS.WritableStream, total: number, started: number): { update: (done: number) => void; end: () => void } {
  const tty = (stream as NodeJS.WriteStream).isTTY === true;
  let last = 0;
  return {
    update: (done) => {
      const now = performance.now();
      if (!tty || now - last < 100) return;
      last = now;
      const width = 30;
      const filled = Math.round((done / Math.max(1, total)) * width);
      const rate = Math.round(done / Math.max(0.001, (now - started) / 1000));
      stream.write(`\r\x1b[2K[${"#".repeat(filled).padEnd(width, ".")}] ${done}/${total} keys, ${rate} keys/s`);
    },
    end: () => {
      if (tty) stream.write("\r\x1b[2K");
    },
  };
}
