/**
 * CLIENT LIST, and the names of the connections that hold shardform's in-cluster apply lease:
 * "shardform-apply:<host>:<pid>:<start, ms since the epoch>". A name cannot hold spaces.
 */
export interface ClientEntry {
  id: number;
  name: string;
  addr: string;
}

export function parseClientList(text: string): ClientEntry[] {
  const out: ClientEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const f: Record<string, string> = {};
    for (const part of line.trim().split(" ")) {
      const i = part.indexOf("=");
      if (i > 0) f[part.slice(0, i)] = part.slice(i + 1);
    }
    out.push({ id: Number(f["id"] ?? -1), name: f["name"] ?? "", addr: f["addr"] ?? "" });
  }
  return out;
}

export const LEASE_PREFIX = "shardform-apply:";

export interface LeaseHolderName {
  host: string;
  pid: number;
  since: string;
}

export function leaseName(h: { host: string; pid: number; startedMs: number }): string {
  return `${LEASE_PREFIX}${h.host.replace(/[^A-Za-z0-9_.-]/g, "_")}:${h.pid}:${h.startedMs}`;
}

export function parseLeaseName(name: string): LeaseHolderName | null {
  if (!name.startsWith(LEASE_PREFIX)) return null;
  const [host, pid, ms] = name.slice(LEASE_PREFIX.length).split(":");
  if (!host || !pid || !ms || !/^\d+$/.test(pid) || !/^\d+$/.test(ms)) return null;
  return { host, pid: Number(pid), since: new Date(Number(ms)).toISOString() };
}
