/** Shows executor progress: a live line on a terminal, plain lines otherwise, JSON lines with --json-log. */
import type { ProgressEvent } from "../executor/progress.js";

export type ProgressMode = "tty" | "plain" | "json";

export function progressPrinter(mode: ProgressMode, out: NodeJS.WritableStream, totalSlots: number): (e: ProgressEvent) => void {
  let steps = 0;
  let done = 0;
  let slotsDone = 0;
  let keys = 0;
  let limit = "";
  let t0 = performance.now();
  let lastDraw = 0;
  let lastPlain = 0;
  let current = "";
  const rate = (): number => keys / Math.max(0.001, (performance.now() - t0) / 1000);
  const parts = (): string[] => {
    const frac = steps ? done / steps : 1;
    const bar = "#".repeat(Math.round(frac * 20)).padEnd(20, ".");
    const slotRate = slotsDone / Math.max(0.001, (performance.now() - t0) / 1000);
    // An ETA from the first few slots would be noise.
    const eta = totalSlots > slotsDone && slotsDone >= 20 ? `ETA ${Math.ceil((totalSlots - slotsDone) / slotRate)}s` : "";
    return [`[${bar}] ${done}/${steps}`, totalSlots ? `slots ${slotsDone}/${totalSlots}` : "", `${keys} keys`, `${Math.round(rate())} keys/s${limit ? ` (${limit})` : ""}`, eta, current];
  };
  const clear = (): void => void out.write("\r\x1b[2K");
  const width = (): number => Math.max(20, ((out as NodeJS.WriteStream).columns ?? 80) - 1);
  /** The live line, cut to the terminal's width: the least useful parts (the current step, then the ETA) go first. */
  const fitted = (): string => {
    const p = parts().filter(Boolean);
    let line = p.join("  ");
    while (line.length > width() && p.length > 1) {
      p.pop();
      line = p.join("  ");
    }
    return line.slice(0, width());
  };
  // A resized terminal gets the line redrawn at its new width at once.
  if (mode === "tty") (out as NodeJS.WriteStream).on?.("resize", () => void out.write(`\r\x1b[2K${fitted()}`));
  const print = (line: string): void => {
    if (mode === "tty") clear();
    out.write(line + "\n");
  };
  return (e) => {
    if (mode === "json") {
      out.write(JSON.stringify({ ts: new Date().toISOString(), ...e }) + "\n");
      return;
    }
    const now = performance.now();
    switch (e.type) {
      case "plan-start":
        steps = e.steps;
        done = e.resumed;
        limit = e.limit ?? "";
        t0 = now;
        print(`Applying ${e.steps - e.resumed} step(s)${e.resumed ? ` (${e.resumed} already done)` : ""}${limit ? `, ${limit}` : ""}.`);
        return;
      case "step-start":
        current = e.text;
        if (e.kind !== "migrate-slot") print(`  ${e.id}: ${e.text} ...`);
        break;
      case "step-done":
        done++;
        if (e.kind === "migrate-slot") slotsDone++;
        else print(`  ${e.id}: ${e.skipped ? "already done" : "done"} (${Math.round(e.ms)} ms)`);
        break;
      case "keys-moved":
        keys += e.keys;
        break;
      case "wait":
        if (mode === "plain") print(`  waiting for ${e.what}`);
        else current = `waiting for ${e.what}`;
        break;
      case "retry":
        print(`  waiting: ${e.what} failed (${e.cause}); retrying (attempt ${e.attempt})`);
        return;
      case "note":
        print(`  note: ${e.message}`);
        return;
      case "warning":
        print(`Warning: ${e.message}`);
        return;
      case "failpoint":
        print(`  failpoint ${e.name} reached`);
        return;
      case "done":
        print(`Apply complete: ${e.steps} step(s), ${keys} keys moved in ${(e.ms / 1000).toFixed(1)} s; the cluster is in the plan's end state.`);
        if (e.timings) print(`Time: ${timeLine(e.timings)}.`);
        return;
      case "stopped":
        if (mode === "tty") clear();
        return;
      default:
        break;
    }
    if (mode === "tty" && now - lastDraw > 100) {
      lastDraw = now;
      out.write(`\r\x1b[2K${fitted()}`);
    } else if (mode === "plain" && e.type === "step-done" && e.kind === "migrate-slot" && (now - lastPlain > 5000 || done === steps)) {
      lastPlain = now;
      out.write(`  ${parts().filter(Boolean).slice(0, 5).join("  ")}\n`);
    }
  };
}

/** "before apply 0.6 s, prepare 0.1 s, steps 2.8 s, verify 0.3 s; 3.8 s since the process started". */
export function timeLine(t: { sinceStartMs: number; prepareMs: number; stepsMs: number; verifyMs: number }): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const before = Math.max(0, t.sinceStartMs - t.prepareMs - t.stepsMs - t.verifyMs);
  return `before apply ${s(before)} (start, observe, plan), prepare ${s(t.prepareMs)} (locks, observe again, probes, lease), steps ${s(t.stepsMs)}, verify ${s(t.verifyMs)} (agreement, end state); ${s(t.sinceStartMs)} since the process started`;
}
