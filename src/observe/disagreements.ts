/** Compares every member's view of every other member with that member's own account. Pure. */
import { formatRanges } from "../slots.js";
import type { ObservedNode } from "./types.js";

export type DisagreementKind = "stranger" | "address" | "role" | "slots" | "flags" | "link" | "unknown-member" | "unreachable";

export interface Disagreement {
  kind: DisagreementKind;
  /** The member whose view differs; null when the item is about a node itself. */
  viewer: string | null;
  subject: { id: string; addr: string };
  text: string;
}

/** Every disagreement, in words: what `check` and snapshots show. */
export function findDisagreements(nodes: ObservedNode[]): string[] {
  return viewDisagreements(nodes).map((d) => d.text);
}

export function viewDisagreements(nodes: ObservedNode[]): Disagreement[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out: Disagreement[] = [];
  const add = (kind: DisagreementKind, viewer: string | null, subject: { id: string; addr: string }, text: string): void => {
    out.push({ kind, viewer, subject: { id: subject.id, addr: subject.addr }, text });
  };
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
        if (!e.flags.includes("handshake")) add("stranger", viewer.addr, e, `${viewer.addr} lists ${e.addr} (${e.id.slice(0, 8)}), which is not a member`);
        continue;
      }
      if (e.addr !== subject.addr) add("address", viewer.addr, subject, `${viewer.addr} has ${subject.addr} at address ${e.addr}`);
      if (subject.reachable && (e.role !== subject.role || e.masterId !== subject.masterId)) {
        add("role", viewer.addr, subject, `${viewer.addr} sees ${subject.addr} as ${describeRole(e.role, e.masterId)}, but it says ${describeRole(subject.role, subject.masterId)}`);
      }
      if (subject.reachable && subject.role === "master" && formatRanges(e.slots) !== formatRanges(subject.slots)) {
        add("slots", viewer.addr, subject, `${viewer.addr} sees ${subject.addr} owning slots ${formatRanges(e.slots)}, but it claims ${formatRanges(subject.slots)}`);
      }
      const bad = e.flags.filter((f) => f === "fail" || f === "pfail" || f === "noaddr");
      if (bad.length > 0) add("flags", viewer.addr, subject, `${viewer.addr} flags ${subject.addr} as ${bad.join(",")}`);
      if (!e.linkConnected && !bad.length) add("link", viewer.addr, subject, `${viewer.addr} has no connected link to ${subject.addr}`);
    }
    for (const n of nodes) {
      if (n.id !== viewer.id && !seen.has(n.id)) add("unknown-member", viewer.addr, n, `${viewer.addr} does not know ${n.addr}`);
    }
  }
  for (const n of nodes) if (!n.reachable) add("unreachable", null, n, `${n.addr} could not be reached; described as its peers see it`);
  return out;
}
