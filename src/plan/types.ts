import type { NodeAddr } from "../redis/node-key.js";
import type { ObservedCluster } from "../observe/types.js";
import type { SlotRange } from "../slots.js";

/** A node as steps name it: by id (what Redis uses) and address (what people read). */
export interface NodeRef {
  id: string;
  addr: NodeAddr;
}

interface StepBase {
  /** Unique within the plan, stable for the same inputs: "<n>-<kind>". */
  id: string;
  /** Display only: why the planner chose this step. Never read by apply. */
  reason?: string;
}

export type Step =
  | (StepBase & { kind: "reset-node"; node: NodeRef; keys: number; destructive: true })
  | (StepBase & { kind: "meet"; node: NodeRef; via: NodeRef })
  | (StepBase & { kind: "add-slots"; node: NodeRef; ranges: SlotRange[] })
  | (StepBase & { kind: "replicate"; replica: NodeRef; master: NodeRef })
  | (StepBase & { kind: "migrate-slot"; slot: number; from: NodeRef; to: NodeRef; estKeys: number })
  | (StepBase & { kind: "failover"; replica: NodeRef; master: NodeRef })
  | (StepBase & { kind: "forget-node"; node: NodeRef; destructive: true });

export type StepKind = Step["kind"];
export const STEP_KINDS: readonly StepKind[] = ["reset-node", "meet", "add-slots", "replicate", "migrate-slot", "failover", "forget-node"];

export interface PlanSummary {
  nodesToAdd: number;
  nodesToRemove: number;
  nodesToReset: number;
  slotsToAssign: number;
  slotsToMove: number;
  /** Estimate from key counts when the cluster was observed. */
  keysToMove: number;
  replicasToChange: number;
  failovers: number;
  destructive: boolean;
  changes: boolean;
}

export interface Plan {
  kind: "shardform-plan";
  formatVersion: 1;
  toolVersion: string;
  /** sha256 of the normalized spec. */
  specDigest: string;
  /** The spec file the plan was made from (for messages only). */
  specFile: string;
  observed: { fingerprint: string; snapshot: ObservedCluster };
  steps: Step[];
  summary: PlanSummary;
  /** Display only: remarks from the planner (e.g. "balanced within the threshold"). */
  notes: string[];
  /** sha256 over everything above; detects a hand-edited plan. */
  digest: string;
}

export const PLAN_FORMAT_VERSION = 1;
