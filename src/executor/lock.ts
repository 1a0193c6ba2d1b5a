/**
 * Lock files, so that two applies never run against the same checkpoint or the same nodes at once.
 * One file per checkpoint and one per node id (in the lock directory: the system's temp directory,
 * or --lock-dir / SHARDFORM_LOCK_DIR, e.g. on storage shared by the machines operators apply from).
 *
 * A file names its holder (host, pid, start, a random token). A lock left by a dead process on this
 * host is taken over; the takeover is serialized by a second file created with O_EXCL, so that two
 * processes that both saw the dead holder cannot both take it. Release removes a file only if it
 * still holds our token. Locks are re-entrant within one process.
 */
import { makeDirs } from "../util/make-dirs.js";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { InputError, LockedError } from "../errors.js";

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  what: string;
  token: string;
}

const TOKEN = randomBytes(8).toString("hex");
const STARTED = new Date().toISOString();
/** Files this process holds, with a count (re-entrant). */
const held = new Map<string, number>();

/**
 * SHARDFORM_LOCK_DIR, else a directory of this user's in the system's temp directory, made with mode
 * 0700: in a shared /tmp, another user could otherwise plant or remove lock files. A directory there
 * that another user owns, or that others may write to, is refused.
 */
export function defaultLockDir(): string {
  const set = process.env["SHARDFORM_LOCK_DIR"];
  if (set) return set;
  const uid = process.getuid?.();
  const dir = join(tmpdir(), uid === undefined ? "shardform-locks" : `shardform-locks-${uid}`);
  makeDirs(dir, 0o700);
  const st = statSync(dir);
  if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new InputError(
      `the lock directory ${dir} is not this user's own (owner uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}): remove it, or pass --lock-dir DIR (or SHARDFORM_LOCK_DIR) with a directory only you can write`,
    );
  }
  return dir;
}

export function nodeLockFile(dir: string, nodeId: string): string {
  return join(dir, `node-${nodeId}.lock`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readHolder(file: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as LockHolder;
  } catch {
    return null;
  }
}

function createExclusive(file: string, holder: LockHolder): boolean {
  try {
    const fd = openSync(file, "wx", 0o600);
    try {
      writeSync(fd, JSON.stringify(holder) + "\n");
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on ${h.host}, started ${h.startedAt} (${h.what})`;
}

function me(what: string): LockHolder {
  return { pid: process.pid, host: hostname(), startedAt: STARTED, what, token: TOKEN };
}

/** Takes one lock file, or throws LockedError naming its holder. */
export function acquireLock(file: string, what: string): () => void {
  if (held.has(file)) {
    held.set(file, held.get(file)! + 1);
    return () => releaseLock(file);
  }
  makeLockDir(join(file, ".."));
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusive(file, me(what))) {
      held.set(file, 1);
      return () => releaseLock(file);
    }
    const h = readHolder(file);
    if (!h) throw new LockedError(`${file} exists and is unreadable: if no apply is running, remove it with \`shardform force-unlock\``);
    if (h.host !== hostname() || isAlive(h.pid)) {
      throw new LockedError(
        `another apply holds ${file}: ${describeHolder(h)}. Wait for it to finish; if that process is gone for good, run \`shardform force-unlock\`.`,
      );
    }
    takeOver(file, h);
  }
  throw new LockedError(`could not take the lock ${file}: other processes keep taking it`);
}

/** Removes a dead holder's lock, unless another process got there first. */
function takeOver(file: string, dead: LockHolder): void {
  const mutex = `${file}.takeover`;
  if (!createExclusive(mutex, me(`take over ${file}`))) {
    const m = readHolder(mutex);
    const ageMs = (() => {
      try {
        return Date.now() - statSync(mutex).mtimeMs;
      } catch {
        return 0;
      }
    })();
    if (m && m.host === hostname() && !isAlive(m.pid) && ageMs > 10_000) {
      throw new LockedError(`${mutex} was left by a process that died while taking over a lock: remove it with \`shardform force-unlock\``);
    }
    return; // another process is taking it over: try again, and find its lock
  }
  try {
    const now = readHolder(file);
    if (now && now.token === dead.token && now.pid === dead.pid) rmSync(file, { force: true });
  } finally {
    rmSync(mutex, { force: true });
  }
}

function releaseLock(file: string): void {
  const n = held.get(file) ?? 0;
  if (n > 1) {
    held.set(file, n - 1);
    return;
  }
  held.delete(file);
  const h = readHolder(file);
  if (h && h.token === TOKEN && h.pid === process.pid) rmSync(file, { force: true });
}

/** Several locks at once: all or none (taken in sorted order; on a failure, the ones taken are released). */
/**
 * Runs `take` (taking locks or the lease) until it is not refused with LockedError, for up to
 * `timeoutMs` (--lock-timeout, as Terraform's -lock-timeout): `onWait` hears once whom it waits for.
 * With 0 the first refusal stands.
 */
export async function waitForLock<T>(take: () => T | Promise<T>, timeoutMs: number, onWait: (msg: string) => void): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      return await take();
    } catch (err) {
      if (!(err instanceof LockedError) || Date.now() >= deadline) throw err;
      if (!told) onWait(`${err.message.replace(/\.? Wait for it to finish.*$/s, "")}: waiting up to ${Math.ceil(timeoutMs / 1000)} s for it (--lock-timeout)`);
      told = true;
      await new Promise((r) => setTimeout(r, Math.max(10, Math.min(500, deadline - Date.now()))));
    }
  }
}

export class LockSet {
  private readonly releases: (() => void)[] = [];
  private readonly files = new Set<string>();

  add(files: readonly string[], what: string): void {
    const taken: (() => void)[] = [];
    try {
      for (const f of [...new Set(files)].filter((x) => !this.files.has(x)).sort()) {
        taken.push(acquireLock(f, what));
        this.files.add(f);
      }
    } catch (err) {
      for (const r of taken.reverse()) r();
      throw err;
    }
    this.releases.push(...taken);
  }

  /**
   * Releases every lock it holds, each one even when another fails (a read-only directory): returns
   * what could not be removed. Such a file names a process that is gone, so the next taker takes it over.
   */
  release(): string[] {
    const problems: string[] = [];
    for (const r of this.releases.splice(0).reverse()) {
      try {
        r();
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    this.files.clear();
    return problems;
  }
}

/** Lock files in a directory and their holders, for force-unlock and for plan's "apply in progress". */
export function listLocks(dir: string): { file: string; holder: LockHolder | null; alive: boolean | null }[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".lock") || n.endsWith(".takeover"));
  } catch {
    return [];
  }
  return names.map((n) => {
    const file = join(dir, n);
    const holder = readHolder(file);
    return { file, holder, alive: holder ? (holder.host === hostname() ? isAlive(holder.pid) : null) : null };
  });
}

export function removeLock(file: string): void {
  rmSync(file, { force: true });
  held.delete(file);
}

/** The directory of a lock file, made when missing; one that cannot be made is an input error naming it. */
function makeLockDir(dir: string): void {
  try {
    makeDirs(dir);
  } catch (err) {
    throw new InputError(`the lock directory ${dir} cannot be made (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give another --lock-dir (or --state-dir for the checkpoint's lock)`);
  }
}
