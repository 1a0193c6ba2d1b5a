/** Compares every member's view of every other member with that member's own account. Pure. */
import { formatRanges } from "../slots.js";
import type { ObservedNode } from "./types.js";

export function findDisagreements(nodes: ObservedNode[]): string[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out: string[] = [];
  const name = (id: string | null): string => (id === null ? "-" : (byId.get(id)?.addr ?? id.slice(0, 8)));
  const describeRole = (role: string, masterId: string | null): string =>
    role === "master" ? "master" : `replica of ${name(masterId)}`;
  for (const viewer of nodes) {
    if (!viewer.view) continue;
    const seen = new Set<string>();
    for (const e of viewer.view) {
      seen.add(e.id);
      const subject = byId.get(e.id);
      if (!subject) {
        if (!e.flags.includes("handshake")) out.push(`${viewer.addr} lists ${e.addr} (${e.id.slice(0, 8)}), which is not a member`);
        continue;
      }
      if (e.addr !== subject.addr) out.push(`${viewer.addr} has ${subject.addr} at address ${e.addr}`);
      if (subject.reachable && (e.role !== subject.role || e.masterId !== subject.masterId)) {
        out.push(
          `${viewer.addr} sees ${subject.addr} as ${describeRole(e.role, e.masterId)}, but it says ${describeRole(subject.role, subject.masterId)}`,
        );
      }
      if (subject.reachable && subject.role === "master" && formatRanges(e.slots) !== formatRanges(subject.slots)) {
        out.push(
          `${viewer.addr} sees ${subject.addr} owning slots ${formatRanges(e.slots)}, but it claims ${formatRanges(subject.slots)}`,
        );
      }
      const bad = e.flags.filter((f) => f === "fail" || f === "pfail" || f === "noaddr");
      if (bad.length > 0) out.push(`${viewer.addr} flags ${subject.addr} as ${bad.join(",")}`);
      if (!e.linkConnected && !bad.length) out.push(`${viewer.addr} has no connected link to ${subject.addr}`);
    }
    for (const n of nodes) {
      if (n.id !== viewer.id && !seen.has(n.id)) out.push(`${viewer.addr} does not know ${n.addr}`);
    }
  }
  for (const n of nodes) if (!n.reachable) out.push(`${n.addr} could not be reached; described as its peers see it`);
  return out;
}
