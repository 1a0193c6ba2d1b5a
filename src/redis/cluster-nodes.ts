/**
 * Parses the wire format of CLUSTER NODES and CLUSTER INFO. The wire's words
 * ("slave", "myself", "fail?") stay in this file; callers get the spec's words.
 */
import { ClusterStateError } from "../errors.js";
import { formatNodeAddr } from "./node-key.js";
import type { SlotRange } from "../slots.js";

export type NodeFlag = "myself" | "fail" | "pfail" | "handshake" | "noaddr" | "nofailover";

export interface OpenSlot {
  slot: number;
  /** the other side of the move: the target when migrating, the source when importing */
  peerId: string;
}

/** One line of CLUSTER NODES, as one node sees another. */
export interface NodeEntry {
  id: string;
  /** "host:port"; empty host (a node that never learnt its own ip) stays "" + ":port" */
  addr: string;
  /** The hostname the node announces (cluster-announce-hostname, Redis 7+), if any. */
  hostname?: string;
  busPort: number;
  role: "master" | "replica";
  masterId: string | null;
  flags: NodeFlag[];
  configEpoch: number;
  linkConnected: boolean;
  slots: SlotRange[];
  migrating: OpenSlot[];
  importing: OpenSlot[];
}

export function parseClusterNodes(text: string): NodeEntry[] {
  const out: NodeEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const f = line.split(" ");
    if (f.length < 8) throw new ClusterStateError(`Unexpected CLUSTER NODES line: ${line}`);
    const [id, addrField, flagField, master, , , epoch, link, ...slotFields] = f as [
      string, string, string, string, string, string, string, string, ...string[],
    ];
    // ip:port@cport[,hostname[,aux=value...]]
    const [at, ...extra] = addrField.split(",") as [string, ...string[]];
    const hostname = extra.find((x) => x !== "" && !x.includes("="));
    const [hostPort, cport] = at.split("@") as [string, string | undefined];
    const lastColon = hostPort.lastIndexOf(":");
    const host = hostPort.slice(0, lastColon);
    const port = Number(hostPort.slice(lastColon + 1));
    const wireFlags = flagField.split(",");
    const flags: NodeFlag[] = [];
    for (const w of wireFlags) {
      if (w === "myself") flags.push("myself");
      else if (w === "fail") flags.push("fail");
      else if (w === "fail?") flags.push("pfail");
      else if (w === "handshake") flags.push("handshake");
      else if (w === "noaddr") flags.push("noaddr");
      else if (w === "nofailover") flags.push("nofailover");
    }
    const entry: NodeEntry = {
      id,
      addr: host === "" ? `:${port}` : formatNodeAddr({ host, port }),
      ...(hostname ? { hostname } : {}),
      busPort: cport ? Number(cport) : port + 10000,
      role: wireFlags.includes("slave") ? "replica" : "master",
      masterId: master === "-" ? null : master,
      flags,
      configEpoch: Number(epoch),
      linkConnected: link === "connected",
      slots: [],
      migrating: [],
      importing: [],
    };
    for (const s of slotFields) {
      if (s.startsWith("[")) {
        const body = s.slice(1, -1);
        const mig = body.indexOf("->-");
        const imp = body.indexOf("-<-");
        if (mig > 0) entry.migrating.push({ slot: Number(body.slice(0, mig)), peerId: body.slice(mig + 3) });
        else if (imp > 0) entry.importing.push({ slot: Number(body.slice(0, imp)), peerId: body.slice(imp + 3) });
        continue;
      }
      const dash = s.indexOf("-");
      if (dash < 0) entry.slots.push([Number(s), Number(s)]);
      else entry.slots.push([Number(s.slice(0, dash)), Number(s.slice(dash + 1))]);
    }
    out.push(entry);
  }
  return out;
}

/**
 * INFO replication's master_replid, and master_replid2 when set (the id a node replicated before its
 * last promotion; all zeros when there is none).
 */
export function replicationIds(info: Record<string, string>): { replId?: string; replId2?: string } {
  const id = info["master_replid"];
  const id2 = info["master_replid2"];
  return { ...(id ? { replId: id } : {}), ...(id2 && !/^0+$/.test(id2) ? { replId2: id2 } : {}) };
}

/** A replica as its master's INFO replication lists it (slave0:ip=...,port=...,state=...,offset=...,lag=...). */
export interface ListedReplica {
  ip: string;
  port: number;
  /** wait_bgsave (its first sync not started yet), send_bulk, online */
  state: string;
  lag: number;
}

/** The replicas a master's INFO replication lists. */
export function listedReplicas(info: Record<string, string>): ListedReplica[] {
  return Object.keys(info)
    .filter((k) => /^slave\d+$/.test(k))
    .map((k) => {
      const f = Object.fromEntries(info[k]!.split(",").map((kv) => kv.split("=") as [string, string]));
      return { ip: f["ip"] ?? "", port: Number(f["port"]), state: f["state"] ?? "", lag: Number(f["lag"] ?? 0) };
    });
}

/** A replica's INFO replication: its link to its master is up and no full sync is running. */
export function linkSynced(info: Record<string, string>): boolean {
  return info["master_link_status"] === "up" && info["master_sync_in_progress"] === "0";
}

/** CLUSTER INFO / INFO sections: "key:value" lines into a map. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (l === "" || l.startsWith("#")) continue;
    const i = l.indexOf(":");
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}
