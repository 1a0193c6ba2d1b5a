/**
 * The fingerprint of a topology: a digest of what a plan depends on (members, roles,
 * slot owners, open slots, outsiders' state), not of what changes under traffic (keys, epochs).
 */
import { createHash } from "node:crypto";
import stableStringify from "json-stable-stringify";
import { formatRanges } from "../slots.js";
import type { ObservedCluster } from "./types.js";

export function topologyEssence(o: ObservedCluster): Record<string, unknown> {
  return {
    nodes: o.nodes.map((n) => ({
      id: n.id,
      addr: n.addr,
      role: n.role,
      master: n.masterId,
      slots: formatRanges(n.slots),
      migrating: n.migrating.map((m) => `${m.slot}->${m.peerId}`),
      importing: n.importing.map((m) => `${m.slot}<-${m.peerId}`),
      failed: n.flags.includes("fail"),
    })),
    outsiders: o.outsiders.map((x) => ({ addr: x.addr, id: x.id ?? null, state: x.state })),
  };
}

export function fingerprint(o: ObservedCluster): string {
  return "sha256:" + createHash("sha256").update(stableStringify(topologyEssence(o)) ?? "").digest("hex");
}

/** Human-readable differences between two topologies, for a stale-plan message. */
export function describeChanges(before: ObservedCluster, after: ObservedCluster): string[] {
  const a = topologyEssence(before) as { nodes: { id: string; addr: string }[]; outsiders: { addr: string }[] };
  const b = topologyEssence(after) as typeof a;
  const out: string[] = [];
  const key = (n: { id: string }) => n.id;
  const mapA = new Map(a.nodes.map((n) => [key(n), n]));
  const mapB = new Map(b.nodes.map((n) => [key(n), n]));
  for (const [id, n] of mapA) {
    const m = mapB.get(id);
    if (!m) out.push(`${n.addr} is no longer a member`);
    else {
      for (const field of Object.keys(n) as (keyof typeof n)[]) {
        const x = JSON.stringify(n[field]);
        const y = JSON.stringify(m[field]);
        if (x !== y) out.push(`${n.addr}: ${String(field)} was ${x}, now ${y}`);
      }
    }
  }
  for (const [id, m] of mapB) if (!mapA.has(id)) out.push(`${m.addr} joined the cluster`);
  const oa = JSON.stringify(a.outsiders);
  const ob = JSON.stringify(b.outsiders);
  if (oa !== ob) out.push(`nodes outside the cluster changed: ${oa} -> ${ob}`);
  return out;
}
