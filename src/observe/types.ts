import type { NodeAddr } from "../redis/node-key.js";
import type { NodeFlag, OpenSlot } from "../redis/cluster-nodes.js";
import type { SlotRange } from "../slots.js";
import type { LoadMeasurement } from "./load.js";

export type Role = "master" | "replica";

/** What one node says about another (a line of its CLUSTER NODES). */
export interface ViewEntry {
  id: string;
  addr: NodeAddr;
  role: Role;
  masterId: string | null;
  flags: Exclude<NodeFlag, "myself">[];
  linkConnected: boolean;
  slots: SlotRange[];
}

export interface ObservedNode {
  id: string;
  /** The address the node announces (what the cluster uses), host:port. */
  addr: NodeAddr;
  /** The hostname it announces (cluster-announce-hostname), if any. */
  hostname?: string;
  role: Role;
  masterId: string | null;
  /** Flags as the node reports itself, or as its peers do when it is unreachable. */
  flags: Exclude<NodeFlag, "myself">[];
  configEpoch: number;
  /** Slots this master claims (its own view). */
  slots: SlotRange[];
  /** Slots this node is moving out (it is the source). */
  migrating: OpenSlot[];
  /** Slots this node is receiving (it is the target). */
  importing: OpenSlot[];
  reachable: boolean;
  unreachableReason?: string;
  clusterState?: "ok" | "fail";
  currentEpoch?: number;
  knownNodes?: number;
  keys?: number;
  /** Databases other than 0 that hold keys (INFO keyspace; Valkey 9 with cluster-databases > 1). */
  otherDatabases?: number[];
  /** INFO memory used_memory_dataset: bytes of data (what `check` compares between masters). */
  memoryDataset?: number;
  /** INFO memory used_memory and maxmemory (0: no limit): what a balance by memory checks capacity against. */
  usedMemory?: number;
  maxmemory?: number;
  /**
   * INFO replication master_replid, and master_replid2 when set (the id it replicated before its last
   * promotion): a promoted replica's replId2 is its old master's replId (safety rule 9, split shard).
   */
  replId?: string;
  replId2?: string;
  /**
   * For replicas in a full sync with their master (INFO replication master_sync_in_progress:1): the
   * bytes of the master's snapshot read so far and its size (-1 while the master still makes it).
   */
  syncing?: { readBytes: number; totalBytes: number };
  /** For replicas: whether the link to the master is up. */
  masterLinkUp?: boolean;
  /** "redis 7.0.15", "valkey 8.0.1": what INFO server says. */
  server?: string;
  /**
   * Masters: keys held in slots the node neither owns nor has open. Such keys cannot be read by
   * clients (the node redirects them): a move that went wrong left them behind.
   */
  strayKeys?: { slot: number; keys: number; /** absent: database 0 */ db?: number }[];
  /**
   * The lines of its own CLUSTER NODES that disagree with what their subject says of itself (lines
   * that agree are left out, so a healthy cluster stores no view at all). Absent when unreachable.
   */
  view?: ViewEntry[];
  /** Ids of members its CLUSTER NODES does not list. */
  unknownMembers?: string[];
}

/** A node named in the spec (or a seed) that is not a member of the observed cluster. */
export interface Outsider {
  addr: NodeAddr;
  id?: string;
  /** empty: a fresh node that can join; has-keys / other-cluster: refused unless reset is allowed */
  state: "empty" | "has-keys" | "other-cluster" | "unreachable";
  keys?: number;
  knownNodes?: number;
  detail?: string;
  /** "valkey 9.1.2", from INFO server. */
  server?: string;
}

/**
 * An address named in the spec (or a seed) that is a member written another way: it answered with
 * a member's node id, or it is the hostname a member announces, or its name resolves to a member's
 * address.
 */
export interface Alias {
  addr: NodeAddr;
  id: string;
  how: "answered" | "hostname" | "resolved";
}

/** An apply holding the in-cluster lease (a connection named shardform-apply:HOST:PID:SINCE). */
export interface ApplyHolder {
  host: string;
  pid: number;
  since: string;
  /** The members on which it holds the lease. */
  nodes: NodeAddr[];
}

export interface ObservedCluster {
  kind: "shardform-snapshot";
  formatVersion: 2;
  /** Members, sorted by address. */
  nodes: ObservedNode[];
  outsiders: Outsider[];
  aliases: Alias[];
  /** Every way in which members' views differ, in words. */
  disagreements: string[];
  /** Applies in progress (from the in-cluster lease), when they were looked for. */
  applies?: ApplyHolder[];
  /** What each slot holds, when the spec balances by keys or memory (not part of the fingerprint). */
  load?: LoadMeasurement;
}

export const SNAPSHOT_FORMAT_VERSION = 2;
