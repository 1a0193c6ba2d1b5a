/** Compares every member's view of every other member with that member's own account. Pure. */
import { expandRanges, formatRanges, type SlotRange } from "../slots.js";
import type { ObservedNode, ViewEntry } from "./types.js";

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
  for (const viewer of nodes) {
    if (!viewer.view) continue;
    for (const e of viewer.view) out.push(...entryDisagreements(viewer, e, byId));
    for (const id of viewer.unknownMembers ?? unlisted(viewer, viewer.view, nodes)) {
      const n = byId.get(id);
      if (n) out.push(item("unknown-member", viewer.addr, n, `${viewer.addr} does not know ${n.addr}`));
    }
  }
  for (const n of nodes) if (!n.reachable) out.push(item("unreachable", null, n, `${n.addr} could not be reached; described as its peers see it`));
  return out;
}

/**
 * Keeps of each member's view only what disagrees: lines that differ from what the subject says of
 * itself, and the ids of members it does not list. A healthy cluster of N nodes then stores nothing
 * instead of N x N lines, and viewDisagreements gives the same answer from either form.
 */
export function compactViews(nodes: ObservedNode[]): ObservedNode[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return nodes.map((n) =>
    n.view ? { ...n, view: n.view.filter((e) => entryDisagreements(n, e, byId).length > 0), unknownMembers: unlisted(n, n.view, nodes) } : n,
  );
}

function unlisted(viewer: ObservedNode, view: ViewEntry[], nodes: ObservedNode[]): string[] {
  const seen = new Set(view.map((e) => e.id));
  return nodes.filter((n) => n.id !== viewer.id && !seen.has(n.id)).map((n) => n.id);
}

function item(kind: DisagreementKind, viewer: string | null, subject: { id: string; addr: string }, text: string): Disagreement {
  return { kind, viewer, subject: { id: subject.id, addr: subject.addr }, text };
}

/**
 * Whether two accounts of a master's slots differ outside the slots either node has open. A node
 * importing a slot ignores other nodes' claims on it until the import is closed, so its view of the
 * slot's new owner lacks exactly those slots: that is an open slot (reported as such), not a
 * disagreement.
 */
function slotsDiffer(seen: SlotRange[], claimed: SlotRange[], viewer: ObservedNode, subject: ObservedNode): boolean {
  const open = new Set([...viewer.importing, ...viewer.migrating, ...subject.importing, ...subject.migrating].map((o) => o.slot));
  if (open.size === 0) return true;
  const strip = (r: SlotRange[]): string => expandRanges(r).filter((x) => !open.has(x)).join(",");
  return strip(seen) !== strip(claimed);
}

/** How one line of a member's CLUSTER NODES differs from what its subject says of itself. */
function entryDisagreements(viewer: ObservedNode, e: ViewEntry, byId: Map<string, ObservedNode>): Disagreement[] {
  const out: Disagreement[] = [];
  const name = (id: string | null): string => (id === null ? "-" : (byId.get(id)?.addr ?? id.slice(0, 8)));
  const describeRole = (role: string, masterId: string | null): string => (role === "master" ? "master" : `replica of ${name(masterId)}`);
  const subject = byId.get(e.id);
  if (!subject) {
    if (!e.flags.includes("handshake")) out.push(item("stranger", viewer.addr, e, `${viewer.addr} lists ${e.addr} (${e.id.slice(0, 8)}), which is not a member`));
    return out;
  }
  const add = (kind: DisagreementKind, text: string): void => void out.push(item(kind, viewer.addr, subject, text));
  if (e.addr !== subject.addr) add("address", `${viewer.addr} has ${subject.addr} at address ${e.addr}`);
  if (subject.reachable && (e.role !== subject.role || e.masterId !== subject.masterId)) {
    add("role", `${viewer.addr} sees ${subject.addr} as ${describeRole(e.role, e.masterId)}, but it says ${describeRole(subject.role, subject.masterId)}`);
  }
  if (subject.reachable && subject.role === "master" && formatRanges(e.slots) !== formatRanges(subject.slots) && slotsDiffer(e.slots, subject.slots, viewer, subject)) {
    add("slots", `${viewer.addr} sees ${subject.addr} owning slots ${formatRanges(e.slots)}, but it claims ${formatRanges(subject.slots)}`);
  }
  const bad = e.flags.filter((f) => f === "fail" || f === "pfail" || f === "noaddr");
  if (bad.length > 0) add("flags", `${viewer.addr} flags ${subject.addr} as ${bad.join(",")}`);
  if (!e.linkConnected && !bad.length) add("link", `${viewer.addr} has no connected link to ${subject.addr}`);
  return out;
}

/**
 * Disagreements about roles or slot owners between members: while there are any, the cluster is
 * still settling (a failover spreading, a new replica not yet seen as one) and no plan is safe.
 * Slots seen differently are expected while their owner has a slot open (an interrupted move).
 */
export function unsettled(nodes: ObservedNode[]): string[] {
  const open = new Set(nodes.filter((n) => n.migrating.length + n.importing.length > 0).map((n) => n.id));
  const byPair = new Map<string, { viewer: string; subject: string; role: boolean; slots: boolean }>();
  for (const d of viewDisagreements(nodes)) {
    if ((d.kind !== "role" && d.kind !== "slots") || d.viewer === null) continue;
    const key = `${d.viewer} ${d.subject.id}`;
    const pair = byPair.get(key) ?? { viewer: d.viewer, subject: d.subject.addr, role: false, slots: false };
    if (d.kind === "role") pair.role = true;
    else if (!open.has(d.subject.id)) pair.slots = true;
    byPair.set(key, pair);
  }
  return [...new Set([...byPair.values()].filter((p) => p.role || p.slots).map((p) => `${p.viewer} and ${p.subject} disagree about ${p.subject}'s ${p.role ? "role" : "slots"}`))];
}
