/**
 * mkdir -p, one level at a time. Node 20's mkdirSync(..., { recursive: true }) never returns for a path
 * whose parent exists but refuses a new entry with ENOENT (under /proc, for one): it retries forever
 * at full CPU. This throws that error instead, for the caller to name the path.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";

export function makeDirs(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}
