/** Replicas that would go down with their master: on the same host, or all of a shard's replicas on one host. Pure. */
export interface HostNode {
  id: string;
  addr: string;
  role: "master" | "replica";
  masterId: string | null;
}

const hostOf = (addr: string): string => addr.slice(0, addr.lastIndexOf(":"));

export function hostWarnings(nodes: readonly HostNode[]): string[] {
  const out: string[] = [];
  for (const m of nodes.filter((n) => n.role === "master")) {
    const reps = nodes.filter((n) => n.role === "replica" && n.masterId === m.id);
    const same = reps.filter((r) => hostOf(r.addr) === hostOf(m.addr));
    for (const r of same) out.push(`replica ${r.addr} is on the same host as its master ${m.addr}: losing that host loses the shard`);
    const hosts = new Set(reps.map((r) => hostOf(r.addr)));
    if (reps.length > 1 && hosts.size === 1 && same.length === 0) out.push(`all ${reps.length} replicas of ${m.addr} are on one host (${[...hosts][0]})`);
  }
  return out;
}
