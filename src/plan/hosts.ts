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
  const same: string[] = [];
  for (const m of nodes.filter((n) => n.role === "master")) {
    const reps = nodes.filter((n) => n.role === "replica" && n.masterId === m.id);
    const here = reps.filter((r) => hostOf(r.addr) === hostOf(m.addr));
    for (const r of here) same.push(`${r.addr} of ${m.addr}`);
    const hosts = new Set(reps.map((r) => hostOf(r.addr)));
    if (reps.length > 1 && hosts.size === 1 && here.length === 0) out.push(`all ${reps.length} replicas of ${m.addr} are on one host (${[...hosts][0]}): losing it loses them all`);
  }
  if (same.length === 1) out.unshift(`replica ${same[0]!.replace(" of ", " is on the same host as its master ")}: losing that host loses the shard`);
  else if (same.length > 1) {
    // The whole list: plans and `check --json` carry it as data; the terminal and Markdown shorten it (shortList).
    out.unshift(`${same.length} replicas are on the same host as their master (${same.join(", ")}): losing such a host loses the shard`);
  }
  return out;
}

/**
 * A warning for a person: a parenthesized list of more than `keep` items is cut to its first ones and
 * how many more (the JSON plan and `check --json` keep the whole list).
 */
export function shortList(text: string, keep = 3): string {
  return text.replace(/\(([^()]*)\)/g, (whole, inner: string) => {
    const items = inner.split(", ");
    return items.length > keep + 1 ? `(${items.slice(0, keep).join(", ")}, and ${items.length - keep} more)` : whole;
  });
}
