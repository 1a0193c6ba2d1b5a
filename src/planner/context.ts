/** What every planning rule reads (the spec by node id) and writes (steps, through the builder, and notes). */
import type { ObservedCluster, ObservedNode } from "../observe/types.js";
import type { ClusterSpec } from "../spec/types.js";
import type { StepBuilder } from "./builder.js";
import type { BalanceReport } from "../plan/types.js";

/** The role the spec gives a node. */
export type Want = { role: "master"; shard: number } | { role: "replica"; shard: number; masterId: string };

export interface ShardTargets {
  masterId: string;
  replicaIds: string[];
  weight: number;
  pinned?: ClusterSpec["shards"][number]["slots"];
}

export interface PlanContext {
  spec: ClusterSpec;
  observed: ObservedCluster;
  /** Observed members by id. */
  members: Map<string, ObservedNode>;
  /** Spec address -> node id. */
  idOf: Map<string, string>;
  /** Node id -> desired role, for every node the spec lists. */
  want: Map<string, Want>;
  shards: ShardTargets[];
  b: StepBuilder;
  notes: string[];
  /** Problems that make planning impossible; collected, then thrown together. */
  problems: string[];
  /** Slots estimated so far per source (key estimates are rounded cumulatively). */
  slotsEstimated: Map<string, number>;
  /** Set by the slot rule when the spec balances by keys or memory. */
  balance?: BalanceReport;
  /** Capacity, by memory: bytes per slot, and the masters that give and take with too little room to take first (bytes used now, limit). */
  capacity?: { bytes: Float64Array; masters: Map<string, { used: number; limit: number }> };
  warnings: string[];
}
