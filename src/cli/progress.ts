/** Shows executor progress: a live bar on a terminal, plain lines otherwise, JSON lines with --json-log. */
import type { ProgressEvent } from "../executor/progress.js";

export type ProgressMode = "tty" | "plain" | "json";

export function progressPrinter(mode: ProgressMode, out: NodeJS.WritableStream, totalSlots: number): (e: ProgressEvent) => void {
  let steps = 0;
  let done = 0;
  let slotsDone = 0;
  let keys = 0;
  let t0 = performance.now();
  let lastDraw = 0;
  let lastPlain = 0;
  let current = "";
  const rate = (): number => keys / Math.max(0.001, (performance.now() - t0) / 1000);
  const status = (): string => {
    const frac = steps ? done / steps : 1;
    const width = 24;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
    const slotRate = slotsDone / Math.max(0.001, (performance.now() - t0) / 1000);
    // An ETA from the first few slots would be noise.
    const eta = totalSlots > slotsDone && slotsDone >= 20 ? ` ETA ${Math.ceil((totalSlots - slotsDone) / slotRate)}s` : "";
    return `[${bar}] ${done}/${steps} steps, slots ${slotsDone}/${totalSlots}, ${keys} keys moved, ${Math.round(rate())} keys/s${eta}`;
  };
  const clear = (): void => void out.write("\r\x1b[2K");
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
        t0 = now;
        out.write(`Applying ${e.steps - e.resumed} step(s)${e.resumed ? ` (${e.resumed} already done)` : ""}.\n`);
        return;
      case "step-start":
        current = e.text;
        if (e.kind !== "migrate-slot") {
          if (mode === "tty") clear();
          out.write(`  ${e.id}: ${e.text} ...\n`);
        }
        break;
      case "step-done":
        done++;
        if (e.kind === "migrate-slot") slotsDone++;
        else {
          if (mode === "tty") clear();
          out.write(`  ${e.id}: ${e.skipped ? "already done" : "done"} (${Math.round(e.ms)} ms)\n`);
        }
        break;
      case "keys-moved":
        keys += e.keys;
        break;
      case "note":
        if (mode === "tty") clear();
        out.write(`  note: ${e.message}\n`);
        return;
      case "done":
        if (mode === "tty") clear();
        out.write(`Apply complete: ${e.steps} step(s), ${keys} keys moved in ${(e.ms / 1000).toFixed(1)} s.\n`);
        return;
      case "stopped":
        if (mode === "tty") clear();
        return;
      default:
        break;
    }
    if (mode === "tty" && now - lastDraw > 100) {
      lastDraw = now;
      out.write(`\r\x1b[2K${status()}  ${current}`.slice(0, 200));
    } else if (mode === "plain" && e.type === "step-done" && e.kind === "migrate-slot" && (now - lastPlain > 5000 || done === steps)) {
      lastPlain = now;
      out.write(`  ${status()}\n`);
    }
  };
}
