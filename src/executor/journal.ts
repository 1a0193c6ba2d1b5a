/**
 * The checkpoint beside the plan: which steps are done and which are in flight (started, not known
 * to be finished). Written atomically whenever a unit of work starts or ends, so a crash leaves
 * either the old or the new journal; a unit starts only once the journal naming it is in place.
 * Steps are recorded by number, as ranges ("1-3,5-260").
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { CheckpointError, InputError } from "../errors.js";
import { writeAtomic, writeAtomicAsync } from "../util/atomic-write.js";

export const JOURNAL_FORMAT_VERSION = 2;

export interface Journal {
  kind: "shardform-journal";
  formatVersion: 2;
  planDigest: string;
  planFile: string;
  /** Step numbers done. */
  done: string;
  /** Step numbers started and not known to be finished. */
  inFlight: string;
  keysMoved: number;
  startedAt: string;
  updatedAt: string;
  finished: boolean;
  /** Once finished: whether the cluster was found in the plan's end state ("failed-over": all served, but shards failed over meanwhile). */
  endState?: "verified" | "differs" | "failed-over";
  /** Node ids changed by reset-node (CLUSTER RESET HARD), old -> new: later steps name the node by its new id (safety rule 7). */
  renamed?: Record<string, string>;
  /** Server-side slot migrations started (Valkey 9+, safety rule 10): name -> "source id>target id slot ranges". */
  migrations?: Record<string, string>;
}

export function journalPath(planFile: string, stateDir?: string): string {
  const dir = stateDir ? resolve(stateDir) : dirname(resolve(planFile));
  return join(dir, `${basename(planFile).replace(/\.json$/, "")}.checkpoint.json`);
}

export function stepNumber(id: string): number {
  return Number.parseInt(id, 10);
}

/** Step numbers as ranges: [1,2,3,5] -> "1-3,5". */
export function numbersToRanges(nums: Iterable<number>): string {
  const sorted = [...new Set(nums)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let k = 0; k < sorted.length; ) {
    let e = k;
    while (e + 1 < sorted.length && sorted[e + 1] === sorted[e]! + 1) e++;
    parts.push(e === k ? `${sorted[k]}` : `${sorted[k]}-${sorted[e]}`);
    k = e + 1;
  }
  return parts.join(",");
}

export function rangesToNumbers(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    if (!part.trim()) continue;
    const [a, b] = part.split("-").map(Number) as [number, number | undefined];
    for (let n = a; n <= (b ?? a); n++) out.push(n);
  }
  return out;
}

export function newJournal(planDigest: string, planFile: string): Journal {
  return {
    kind: "shardform-journal",
    formatVersion: 2,
    planDigest,
    planFile: resolve(planFile),
    done: "",
    inFlight: "",
    keysMoved: 0,
    startedAt: new Date().toISOString(),
    updatedAt: "",
    finished: false,
  };
}

export function readJournal(file: string): Journal | null {
  if (!existsSync(file)) return null;
  let j: Journal;
  try {
    j = JSON.parse(readFileSync(file, "utf8")) as Journal;
  } catch (err) {
    throw new InputError(`the checkpoint ${file} is unreadable (${(err as Error).message}); move it away, check the cluster with \`shardform check\`, and plan again`);
  }
  if (j?.kind !== "shardform-journal") throw new InputError(`${file} is not a shardform checkpoint: move it away or pass --state-dir`);
  if (j.formatVersion !== JOURNAL_FORMAT_VERSION) {
    throw new InputError(
      `${file} is a checkpoint of an older shardform (format ${String(j.formatVersion)}). Finish that apply with the version that started it, ` +
        `or check the cluster with \`shardform check\`, plan again, and apply the new plan (--restart ignores the old checkpoint).`,
    );
  }
  return j;
}

/** The journal of one apply, kept in memory as sets of step ids and saved on every change. */
export class JournalFile {
  readonly file: string;
  readonly journal: Journal;
  readonly done = new Set<string>();
  readonly inFlight = new Set<string>();
  private readonly idByNumber: Map<number, string>;
  /** The plan's steps by number, in order: the checkpoint's ranges are read off them (see rangesOf). */
  private readonly ordered: { n: number; id: string }[];

  constructor(file: string, journal: Journal, stepIds: readonly string[]) {
    this.file = file;
    this.journal = journal;
    this.idByNumber = new Map(stepIds.map((id) => [stepNumber(id), id]));
    this.ordered = [...this.idByNumber].map(([n, id]) => ({ n, id })).sort((a, b) => a.n - b.n);
    for (const n of rangesToNumbers(journal.done)) this.done.add(this.id(n));
    for (const n of rangesToNumbers(journal.inFlight)) this.inFlight.add(this.id(n));
  }

  private id(n: number): string {
    const id = this.idByNumber.get(n);
    if (id === undefined) throw new InputError(`the checkpoint ${this.file} names step ${n}, which its plan does not have: it belongs to another plan; pass --restart or --state-dir`);
    return id;
  }

  /**
   * Writes are numbered as they are asked for, with the state of that moment; `inPlace` is the newest
   * one renamed into place, set in the same tick as its rename, so that a write finishing late never
   * replaces a newer one (writeAtomicAsync).
   */
  private issued = 0;
  private inPlace = 0;
  private readonly writing = new Set<Promise<void>>();

  /** The numbers of the steps in `set` as ranges, taken off the plan's steps in order (no sort of every step done at each write). */
  private rangesOf(set: ReadonlySet<string>): string {
    return numbersToRanges(this.ordered.filter(({ id }) => set.has(id)).map(({ n }) => n));
  }

  private text(): string {
    this.journal.done = this.rangesOf(this.done);
    this.journal.inFlight = this.rangesOf(this.inFlight);
    this.journal.updatedAt = new Date().toISOString();
    return JSON.stringify(this.journal, null, 2) + "\n";
  }

  private failed(err: unknown): CheckpointError {
    return new CheckpointError(
      `the checkpoint ${this.file} could not be written (${(err as Error).message}), so apply stopped: nothing new was started and the work in flight was finished. ` +
        `Make the directory writable (or pass --state-dir DIR), then run the same apply again to continue.`,
    );
  }

  /** Throws CheckpointError when the file cannot be written (apply then stops softly: see walk). */
  private flush(): void {
    const n = ++this.issued;
    try {
      writeAtomic(this.file, this.text());
    } catch (err) {
      throw this.failed(err);
    }
    this.inPlace = n;
  }

  /**
   * The state as it is now, written off the main thread (its two fsyncs took tens of milliseconds of a
   * scale-out's event loop). Resolves once it, or a newer state, is in place; rejects with a
   * CheckpointError.
   */
  private flushSoon(): Promise<void> {
    const n = ++this.issued;
    const claim = (): boolean => {
      if (n <= this.inPlace) return false;
      this.inPlace = n;
      return true;
    };
    const p = writeAtomicAsync(this.file, this.text(), claim).then(
      () => undefined,
      (err: unknown) => {
        throw this.failed(err);
      },
    );
    const tracked: Promise<void> = p.catch(() => undefined).finally(() => this.writing.delete(tracked));
    this.writing.add(tracked);
    return p;
  }

  /** Every write asked for has ended (the walk waits for this before it returns). */
  async idle(): Promise<void> {
    while (this.writing.size > 0) await Promise.all([...this.writing]);
  }

  save(): void {
    this.flush();
  }

  /** Records that the node `from` now has the id `to` (a HARD reset), at once: a resume must follow it. */
  rename(from: string, to: string): void {
    this.journal.renamed = { ...this.journal.renamed, [from]: to };
    this.flush();
  }

  /** Records a server-side slot migration the moment it starts: a resume follows it instead of starting another. */
  migration(name: string, what: string): void {
    this.journal.migrations = { ...this.journal.migrations, [name]: what };
    this.flush();
  }

  /** Records steps as in flight; their unit may start once this resolves (the journal naming them is in place). */
  begin(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.inFlight.add(id);
    return this.flushSoon();
  }

  /** Steps recorded by begin that did not start after all (apply stopped meanwhile): no longer in flight. */
  unbegin(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.inFlight.delete(id);
    return this.flushSoon();
  }

  complete(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      this.inFlight.delete(id);
      this.done.add(id);
    }
    return this.flushSoon();
  }
}
