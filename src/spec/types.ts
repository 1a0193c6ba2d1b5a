import type { NodeAddr } from "../redis/node-key.js";
import type { SlotRange } from "../slots.js";

export interface AuthSpec {
  user?: string;
  passwordEnv?: string;
  passwordFile?: string;
}

/** TLS as the spec gives it: paths to PEM files (relative to the spec file), never inline keys. */
export interface TlsSpec {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  insecure?: boolean;
}

export interface ShardSpec {
  master: NodeAddr;
  replicas: NodeAddr[];
  /** Relative share of the unpinned slots; 1 unless given. */
  weight: number;
  /** Pinned slots; undefined when the shard is balanced by weight. */
  slots?: SlotRange[];
}

/** A validated spec, with defaults filled in and addresses normalized. */
export interface ClusterSpec {
  seeds: NodeAddr[];
  auth?: AuthSpec;
  tls?: TlsSpec;
  /** Percent. */
  threshold: number;
  /** What masters are balanced by; absent: slot counts. */
  balanceBy?: "keys" | "memory" | "cpu";
  /** Nodes the operator allows shardform to wipe (FLUSHALL and CLUSTER RESET HARD: a new node id). */
  allowReset: NodeAddr[];
  /** Nodes no plan may remove, drain or demote (like Terraform's prevent_destroy). */
  protect: NodeAddr[];
  shards: ShardSpec[];
}

export const DEFAULT_THRESHOLD = 2;
/** The default threshold when balancing by keys or memory: what slots hold moves all the time. */
export const DEFAULT_LOAD_THRESHOLD = 5;
