/**
 * The 8-node layout several fault files share: masters 0, 1, 2 with replicas 3, 4, 5, and a fourth
 * shard, 6 with replica 7, that comes and goes. `spec` writes a spec of the shards whose masters it is
 * given (seeds: the first three masters) into the directory `dir()` names at call time.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export function shardLayout(base: number, dir: () => string) {
  const a = (i: number): string => `127.0.0.1:${base + i}`;
  const replicaOf = new Map([
    [a(0), a(3)],
    [a(1), a(4)],
    [a(2), a(5)],
    [a(6), a(7)],
  ]);
  /** `cluster` lines after the seeds (e.g. allowReset) may be given in `extra`. */
  const spec = (name: string, masters: number[], extra: string[] = []): string => {
    const f = join(dir(), `${name}.yaml`);
    const lines = [`cluster:`, `  seeds: ["${a(0)}", "${a(1)}", "${a(2)}"]`, ...extra, `shards:`];
    for (const m of masters) lines.push(`  - master: ${a(m)}`, `    replicas: [${replicaOf.get(a(m))}]`);
    writeFileSync(f, lines.join("\n") + "\n");
    return f;
  };
  return { a, replicaOf, spec };
}
