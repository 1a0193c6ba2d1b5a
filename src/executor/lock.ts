/**
 * A lock file so that two applies never run against the same plan or the same cluster at once.
 * It names its holder; a lock left by a dead process on this host is recognized and taken over.
 */
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { ShardformError } from "../errors.js";

export class LockedError extends ShardformError {}

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
  what: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function acquireLock(file: string, what: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      const me: Holder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), what };
      writeSync(fd, JSON.stringify(me) + "\n");
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let h: Holder | null = null;
      try {
        h = JSON.parse(readFileSync(file, "utf8")) as Holder;
      } catch {
        h = null;
      }
      if (h && h.host === hostname() && !alive(h.pid)) {
        rmSync(file, { force: true }); // stale: its process is gone
        continue;
      }
      throw new LockedError(
        h
          ? `another apply holds ${file}: pid ${h.pid} on ${h.host}, started ${h.startedAt} (${h.what}). Wait for it to finish; if that process is gone for good, delete the lock file.`
          : `${file} exists and is unreadable: if no apply is running, delete it`,
      );
    }
  }
  throw new LockedError(`could not take the lock ${file}`);
}
