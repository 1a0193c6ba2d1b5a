/** Shows executor progress: a live line on a terminal, plain lines otherwise, JSON lines with --json-log. */
import type { ProgressEvent } from "../executor/progress.js";
import type { LatencySummary } from "../executor/latency.js";

export type ProgressMode = "tty" | "plain" | "json";

export function progressPrinter(mode: ProgressMode, out: NodeJS.WritableStream, totalSlots: number): (e: ProgressEvent) => void {
  if (mode === "json") return (e) => void out.write(JSON.stringify({ ts: new Date().toISOString(), ...e }) + "\n");
  const view = new ProgressView(mode, out, totalSlots);
  return (e) => view.handle(e);
}

/** Counters of a run, from its events. */
class RunCounters {
  steps = 0;
  done = 0;
  slotsDone = 0;
  keys = 0;
  limit = "";
  t0 = performance.now();
  current = "";

  count(e: ProgressEvent): void {
    switch (e.type) {
      case "plan-start":
        [this.steps, this.done, this.limit, this.t0] = [e.steps, e.resumed, e.limit ?? "", performance.now()];
        break;
      case "step-start":
        this.current = e.text;
        break;
      case "step-done":
        this.done++;
        if (e.kind === "migrate-slot") this.slotsDone++;
        break;
      case "keys-moved":
        this.keys += e.keys;
        break;
      case "wait":
        this.current = `waiting for ${e.what}`;
        break;
      default:
        break;
    }
  }

  /** The parts of the progress line, most useful first. */
  parts(totalSlots: number): string[] {
    const secs = Math.max(0.001, (performance.now() - this.t0) / 1000);
    const bar = "#".repeat(Math.round((this.steps ? this.done / this.steps : 1) * 20)).padEnd(20, ".");
    // An ETA from the first few slots would be noise.
    const eta = totalSlots > this.slotsDone && this.slotsDone >= 20 ? `ETA ${Math.ceil((totalSlots - this.slotsDone) / (this.slotsDone / secs))}s` : "";
    return [
      `[${bar}] ${this.done}/${this.steps}`,
      totalSlots ? `slots ${this.slotsDone}/${totalSlots}` : "",
      `${this.keys} keys`,
      `${Math.round(this.keys / secs)} keys/s${this.limit ? ` (${this.limit})` : ""}`,
      eta,
      this.current,
    ];
  }
}

/** What the --max-latency-ms governor saw and did, for apply's last lines. */
export function latencyLine(l: LatencySummary): string {
  if (l.probes === 0) return `budget ${l.budgetMs} ms; no PING was answered while keys moved, so the pace stayed at ${l.lastRate} keys/s`;
  const over = l.overTicks > 0 ? `, over the budget in ${l.overTicks} of ${l.ticks} quarter second(s)` : "";
  return (
    `budget ${l.budgetMs} ms; a PING on the moving nodes waited ${l.p99Ms.toFixed(2)} ms at the 99th percentile ` +
    `(max ${l.maxMs.toFixed(1)} ms, ${l.probes} PINGs${over}); the pace went up to ${l.topRate} keys/s`
  );
}

/** The lines an event prints (none for most: they update the progress line), given the run so far. */
function eventLines(e: ProgressEvent, c: RunCounters, mode: "tty" | "plain"): string[] {
  switch (e.type) {
    case "plan-start":
      return [`Applying ${e.steps - e.resumed} step(s)${e.resumed ? ` (${e.resumed} already done)` : ""}${c.limit ? `, ${c.limit}` : ""}.`];
    case "step-start":
      return e.kind === "migrate-slot" ? [] : [`  ${e.id}: ${e.text} ...`];
    case "step-done":
      return e.kind === "migrate-slot" ? [] : [`  ${e.id}: ${e.skipped ? "already done" : "done"} (${Math.round(e.ms)} ms)`];
    case "wait":
      return mode === "plain" ? [`  waiting for ${e.what}`] : [];
    case "retry":
      return [`  waiting: ${e.what} failed (${e.cause}); retrying (attempt ${e.attempt})`];
    case "note":
      return [`  note: ${e.message}`];
    case "warning":
      return [`Warning: ${e.message}`];
    case "failpoint":
      return [`  failpoint ${e.name} reached`];
    case "done":
      return [
        `Apply complete: ${e.steps} step(s), ${c.keys} keys moved in ${(e.ms / 1000).toFixed(1)} s; the cluster is in the plan's end state.`,
        ...(e.latency ? [`Latency: ${latencyLine(e.latency)}.`] : []),
        ...(e.timings ? [`Time: ${timeLine(e.timings)}.`] : []),
      ];
    default:
      return [];
  }
}

/** A live line on a terminal (redrawn at most 10 times a second, cut to its width), plain lines otherwise. */
class ProgressView {
  private readonly c = new RunCounters();
  private lastDraw = 0;
  private lastPlain = 0;
  private readonly mode: "tty" | "plain";
  private readonly out: NodeJS.WritableStream;
  private readonly totalSlots: number;

  constructor(mode: "tty" | "plain", out: NodeJS.WritableStream, totalSlots: number) {
    [this.mode, this.out, this.totalSlots] = [mode, out, totalSlots];
    // A resized terminal gets the line redrawn at its new width at once.
    if (mode === "tty") (out as NodeJS.WriteStream).on?.("resize", () => void out.write(`\r\x1b[2K${this.fitted()}`));
  }

  handle(e: ProgressEvent): void {
    this.c.count(e);
    const lines = eventLines(e, this.c, this.mode);
    for (const line of lines) this.print(line);
    if (e.type === "stopped" && this.mode === "tty") this.out.write("\r\x1b[2K");
    // Events that print a message of their own leave the progress line to the next event.
    if (["plan-start", "retry", "note", "warning", "failpoint", "done", "stopped"].includes(e.type)) return;
    const now = performance.now();
    if (this.mode === "tty" && now - this.lastDraw > 100) {
      this.lastDraw = now;
      this.out.write(`\r\x1b[2K${this.fitted()}`);
    } else if (this.mode === "plain" && e.type === "step-done" && e.kind === "migrate-slot" && (now - this.lastPlain > 5000 || this.c.done === this.c.steps)) {
      this.lastPlain = now;
      this.out.write(`  ${this.c.parts(this.totalSlots).filter(Boolean).slice(0, 5).join("  ")}\n`);
    }
  }

  private print(line: string): void {
    if (this.mode === "tty") this.out.write("\r\x1b[2K");
    this.out.write(line + "\n");
  }

  private width(): number {
    return Math.max(20, ((this.out as NodeJS.WriteStream).columns ?? 80) - 1);
  }

  /** The live line, cut to the terminal's width: the least useful parts (the current step, then the ETA) go first. */
  private fitted(): string {
    const p = this.c.parts(this.totalSlots).filter(Boolean);
    let line = p.join("  ");
    while (line.length > this.width() && p.length > 1) {
      p.pop();
      line = p.join("  ");
    }
    return line.slice(0, this.width());
  }
}

/** "before apply 0.6 s, prepare 0.1 s, steps 2.8 s, verify 0.3 s; 3.8 s since the process started". */
export function timeLine(t: { sinceStartMs: number; prepareMs: number; stepsMs: number; verifyMs: number }): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const before = Math.max(0, t.sinceStartMs - t.prepareMs - t.stepsMs - t.verifyMs);
  return `before apply ${s(before)} (start, observe, plan), prepare ${s(t.prepareMs)} (locks, observe again, probes, lease), steps ${s(t.stepsMs)}, verify ${s(t.verifyMs)} (agreement, end state); ${s(t.sinceStartMs)} since the process started`;
}
