/**
 * The fingerprint of a topology: a digest of what a plan depends on (members, roles, slot owners,
 * open slots, stray keys, how spec addresses resolve, outsiders' state), not of what changes under
 * traffic (key counts, epochs).
 */
import { createHash } from "node:crypto";
import { stableJson } from "../util/stable-json.js";
import { formatRanges } from "../slots.js";
import type { ObservedCluster } from "./types.js";

interface Essence {
  nodes: { id: string; addr: string; role: string; master: string | null; slots: string; migrating: string[]; importing: string[]; failed: boolean; strays: number }[];
  outsiders: { addr: string; id: string | null; state: string }[];
  aliases: { addr: string; id: string }[];
}

export function topologyEssence(o: ObservedCluster): Essence {
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
      strays: (n.strayKeys ?? []).length,
    })),
    outsiders: o.outsiders.map((x) => ({ addr: x.addr, id: x.id ?? null, state: x.state })),
    aliases: (o.aliases ?? []).map((a) => ({ addr: a.addr, id: a.id })),
  };
}

export function fingerprint(o: ObservedCluster): string {
  return "sha256:" + createHash("sha256").update(stableJson(topologyEssence(o))).digest("hex");
}

/** The differences between two topologies, in words, for a stale-plan message. */
export function describeChanges(before: ObservedCluster, after: ObservedCluster): string[] {
  const a = topologyEssence(before);
  const b = topologyEssence(after);
  const out: string[] = [];
  const name = (e: Essence, id: string | null): string => (id === null ? "-" : (e.nodes.find((n) => n.id === id)?.addr ?? id.slice(0, 8)));
  const role = (e: Essence, n: Essence["nodes"][number]): string => (n.role === "master" ? "a master" : `a replica of ${name(e, n.master)}`);
  const mapB = new Map(b.nodes.map((n) => [n.id, n]));
  const idsA = new Set(a.nodes.map((n) => n.id));
  for (const n of a.nodes) {
    const m = mapB.get(n.id);
    if (!m) {
      out.push(`${n.addr} (${n.id.slice(0, 8)}) is no longer a member`);
      continue;
    }
    if (m.addr !== n.addr) out.push(`${n.addr} (${n.id.slice(0, 8)}) now announces ${m.addr}`);
    if (role(a, n) !== role(b, m)) out.push(`${n.addr} was ${role(a, n)}, now ${role(b, m)}`);
    if (m.slots !== n.slots) out.push(`${n.addr} owned slots ${n.slots}, now ${m.slots}`);
    const open = (x: typeof n): string => [...x.migrating, ...x.importing].join(",") || "none";
    if (open(n) !== open(m)) out.push(`${n.addr} had open slots ${open(n).replace(/[0-9a-f]{40}/g, (id) => name(a, id))}, now ${open(m).replace(/[0-9a-f]{40}/g, (id) => name(b, id))}`);
    if (n.failed !== m.failed) out.push(`${n.addr} is ${m.failed ? "now" : "no longer"} flagged as failed`);
    if (n.strays !== m.strays) out.push(`${n.addr} holds keys in ${m.strays} slot(s) it does not own (was ${n.strays})`);
  }
  for (const m of b.nodes) if (!idsA.has(m.id)) out.push(`${m.addr} (${m.id.slice(0, 8)}) joined the cluster`);
  const outsider = (x: Essence["outsiders"][number]): string => `${x.state}${x.id ? ` (id ${x.id.slice(0, 8)})` : ""}`;
  const oa = new Map(a.outsiders.map((x) => [x.addr, x]));
  const ob = new Map(b.outsiders.map((x) => [x.addr, x]));
  for (const [addr, x] of oa) {
    const y = ob.get(addr);
    if (!y) continue;
    if (outsider(x) !== outsider(y)) out.push(`${addr}, outside the cluster, was ${outsider(x)}, now ${outsider(y)}`);
  }
  for (const [addr, x] of ob) if (!oa.has(addr) && !b.aliases.some((al) => al.addr === addr)) out.push(`${addr} is now outside the cluster: ${outsider(x)}`);
  const la = new Map(a.aliases.map((x) => [x.addr, x.id]));
  for (const al of b.aliases) if (la.get(al.addr) !== al.id && !mapB.has(al.id)) out.push(`${al.addr} now names ${al.id.slice(0, 8)}`);
  if (out.length === 0) out.push("the observed topology differs in a detail not shown here (compare `shardform snapshot` outputs)");
  return out;
}
