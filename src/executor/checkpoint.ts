/**
 * The journal beside the plan: which steps are done and which are in doubt (started, not known to
 * be finished). Written atomically before and after every step or window of slot moves (temp file,
 * fsync, rename, fsync of the directory), so a crash leaves either the old or the new journal.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { InputError } from "../errors.js";

export interface Journal {
  kind: "shardform-journal";
  formatVersion: 1;
  planDigest: string;
  planFile: string;
  /** Steps[0..completed) are done. */
  completed: number;
  /** Step ids started but not known to be finished. */
  inDoubt: string[];
  /** Step ids after `completed` that are done too (slot moves finished out of order by parallel lanes). */
  doneAhead?: string[];
  keysMoved: number;
  startedAt: string;
  updatedAt: string;
  finished: boolean;
}

export function journalPath(planFile: string, stateDir?: string): string {
  const dir = stateDir ? resolve(stateDir) : dirname(resolve(planFile));
  return join(dir, `${basename(planFile).replace(/\.json$/, "")}.checkpoint.json`);
}

export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dfd = openSync(dirname(file), "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  }
}

export function readJournal(file: string): Journal | null {
  if (!existsSync(file)) return null;
  let j: Journal;
  try {
    j = JSON.parse(readFileSync(file, "utf8")) as Journal;
  } catch (err) {
    throw new InputError(`the checkpoint ${file} is unreadable (${(err as Error).message}); move it away, check the cluster with \`shardform check\`, and plan again`);
  }
  if (j.kind !== "shardform-journal" || j.formatVersion !== 1) throw new InputError(`${file} is not a shardform checkpoint`);
  return j;
}

export function saveJournal(file: string, j: Journal): void {
  j.updatedAt = new Date().toISOString();
  writeAtomic(file, JSON.stringify(j, null, 2) + "\n");
}
