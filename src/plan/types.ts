import type { NodeAddr } from "../redis/node-key.js";
import type { ObservedCluster } from "../observe/types.js";
import type { SlotRange } from "../slots.js";

/** A node as steps name it: by id (what Redis uses) and address (what people read, and where apply connects). */
export interface NodeRef {
  id: string;
  addr: NodeAddr;
}

interface StepBase {
  /** Unique within the plan, stable for the same inputs: "<n>-<kind>". */
  id: string;
  /** Ids of the steps that must be done before this one starts (apply runs any step whose needs are done). */
  needs: string[];
  /** Display only: why the planner chose this step. Never read by apply. */
  reason?: string;
}

export type Step =
  | (StepBase & { kind: "reset-node"; node: NodeRef; keys: number; destructive: true })
  | (StepBase & { kind: "meet"; node: NodeRef; via: NodeRef })
  | (StepBase & { kind: "add-slots"; node: NodeRef; ranges: SlotRange[] })
  | (StepBase & { kind: "replicate"; replica: NodeRef; master: NodeRef })
  /** `atomic`: moved by the server's own slot migration (Valkey 9+ CLUSTER MIGRATESLOTS), not key by key. */
  | (StepBase & { kind: "migrate-slot"; slot: number; from: NodeRef; to: NodeRef; estKeys: number; atomic?: true })
  | (StepBase & { kind: "failover"; replica: NodeRef; master: NodeRef })
  /**
   * Keys of `slot` left on `from`, a master that does not own the slot, by an earlier move of the slot
   * from its shard to the shard of `to`, its owner (safety rule 9): moved to `to` without REPLACE; a key
   * `to` holds too keeps `to`'s copy, and the copy on `from` is deleted. With `drop`, `from` and `to` are
   * of one shard that split (a failover that took over all but the slot): `from`'s keys are stale copies
   * it replicated from `to` (or `to` from it) and never served; they are deleted, not moved.
   */
  | (StepBase & { kind: "move-stray-keys"; slot: number; from: NodeRef; to: NodeRef; keys: number; destructive: true; drop?: true })
  | (StepBase & { kind: "forget-node"; node: NodeRef; destructive: true });

export type StepKind = Step["kind"];
export type StepOf<K extends StepKind> = Extract<Step, { kind: K }>;
export const STEP_KINDS: readonly StepKind[] = ["reset-node", "meet", "add-slots", "replicate", "migrate-slot", "failover", "move-stray-keys", "forget-node"];

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
  /** Keys that move-stray-keys steps take to their slot's owner (present only when there are some). */
  strayKeys?: number;
  /** Stale copies that move-stray-keys steps with `drop` delete (present only when there are some). */
  staleKeys?: number;
  /** Masters that own slots now and none at the end (drained or forgotten). */
  mastersRemoved: number;
  destructive: boolean;
  changes: boolean;
}

/** Where apply finds what it needs to connect: names and paths, never a secret. */
export interface AccessSource {
  user?: string;
  /** Environment variable holding the password. */
  passwordEnv?: string;
  /** File whose first line is the password (absolute path). */
  passwordFile?: string;
  tls?: {
    /** Absolute paths of PEM files. */
    ca?: string;
    cert?: string;
    key?: string;
    servername?: string;
    insecure?: boolean;
  };
}

export interface Plan {
  kind: "shardform-plan";
  formatVersion: 2;
  toolVersion: string;
  /** sha256 of the normalized spec. */
  specDigest: string;
  /** The spec file the plan was made from (for messages only). */
  specFile: string;
  /** Where the credentials and TLS files come from; apply uses the same sources. */
  access: AccessSource;
  /** Permissions given when the plan was made; apply and its resume need nothing more. */
  allow: { massRemoval: boolean };
  observed: { fingerprint: string; snapshot: ObservedCluster };
  steps: Step[];
  summary: PlanSummary;
  /** Display only: remarks from the planner (e.g. "balanced within the threshold"). */
  notes: string[];
  /** Display only: things a reviewer should know (big keys, an apply in progress, replicas sharing a host). */
  warnings: string[];
  /** When the spec balances by keys or memory. */
  balance?: BalanceReport;
  /** sha256 over everything above; detects a hand-edited plan. */
  digest: string;
}

/** What one master holds, by the measurement a balance by keys or memory used. */
export interface MasterLoad {
  slots: number;
  keys: number;
  /** 0 unless measured by memory. */
  bytes: number;
  /** By cpu: microseconds of CPU spent on its slots over the load window. */
  cpu?: number;
}

/** A plan that balances by keys or memory: what was measured, and each master before and after. */
export interface BalanceReport {
  by: "keys" | "memory" | "cpu";
  threshold: number;
  measuredAt: string;
  method: string;
  masters: { id: string; addr: string; share: number | null; before: MasterLoad; after: MasterLoad }[];
  /** Worst deviation of a master from its share, percent, before and after the plan. */
  before: number;
  after: number;
  /** What the plan's slot moves carry, and the least any plan must move to reach the bands (keys, bytes or CPU microseconds, as balanced by). */
  moved: { keys: number; bytes: number; cpu?: number };
  lowerBound: number;
  /** Why the bands cannot all be reached, with the options, when they cannot. */
  unreachable?: string;
}

export const PLAN_FORMAT_VERSION = 2;
