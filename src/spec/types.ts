import type { NodeAddr } from "../redis/node-key.js";
import type { SlotRange } from "../slots.js";

export interface AuthSpec {
  user?: string;
  passwordEnv?: string;
  passwordFile?: string;
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
  /** Percent. */
  threshold: number;
  /** Nodes the operator allows shardform to wipe (CLUSTER RESET HARD). */
  allowReset: NodeAddr[];
  shards: ShardSpec[];
}

export const DEFAULT_THRESHOLD = 2;
