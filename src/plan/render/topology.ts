/** The topology as text, before and after a plan, and their line diff. */
import { diffLines } from "diff";
import { modelFromObserved, simulate, slotsOf, type Model } from "../simulate.js";
import { countSlots, formatRanges } from "../../slots.js";
import type { Plan } from "../types.js";

export function topologyText(m: Model): string {
  const nodes = [...m.nodes.values()];
  const masters = nodes.filter((n) => n.role === "master").sort((a, b) => a.addr.localeCompare(b.addr));
  const lines: string[] = [];
  for (const ms of masters) {
    const slots = slotsOf(m, ms.id);
    lines.push(`${ms.addr} master  ${countSlots(slots)} slots  ${formatRanges(slots)}`);
    for (const r of nodes.filter((n) => n.masterId === ms.id).sort((a, b) => a.addr.localeCompare(b.addr))) {
      lines.push(`  ${r.addr} replica of ${ms.addr}`);
    }
  }
  const orphans = nodes.filter((n) => n.role === "replica" && !m.nodes.has(n.masterId ?? ""));
  for (const r of orphans) lines.push(`${r.addr} replica of unknown ${r.masterId ?? "-"}`);
  return lines.join("\n") + "\n";
}

/** Unified-style lines: " " unchanged, "-" before only, "+" after only. */
export function topologyDiff(plan: Plan): string[] {
  const before = topologyText(modelFromObserved(plan.observed.snapshot));
  const after = topologyText(simulate(plan.observed.snapshot, plan.steps));
  const out: string[] = [];
  for (const part of diffLines(before, after)) {
    const mark = part.added ? "+" : part.removed ? "-" : " ";
    for (const l of part.value.replace(/\n$/, "").split("\n")) out.push(`${mark}${l}`);
  }
  return out;
}
