import { createHash } from "node:crypto";
import stableStringify from "json-stable-stringify";
import { stableJson } from "../util/stable-json.js";
import { fingerprint } from "../observe/fingerprint.js";
import type { ObservedCluster } from "../observe/types.js";
import type { ClusterSpec } from "../spec/types.js";
import { summarize } from "./summary.js";
import { PLAN_FORMAT_VERSION, type AccessSource, type BalanceReport, type Plan, type Step } from "./types.js";

export function sha256(text: string): string {
  return "sha256:" + createHash("sha256").update(text).digest("hex");
}

/** Digest of a spec's meaning: comments and formatting do not change it, passwords are never in it. */
export function specDigest(spec: ClusterSpec): string {
  return sha256(stableStringify(spec) ?? "");
}

/** Digest of a plan's content, everything but the digest field itself. */
export function planDigest(plan: Omit<Plan, "digest"> & { digest?: string }): string {
  const { digest: _ignored, ...rest } = plan;
  return sha256(stableJson(rest));
}

export function makePlan(args: {
  spec: ClusterSpec;
  specFile: string;
  observed: ObservedCluster;
  steps: Step[];
  notes?: string[];
  warnings?: string[];
  access?: AccessSource;
  allowMassRemoval?: boolean;
  toolVersion: string;
  balance?: BalanceReport;
}): Plan {
  const body: Omit<Plan, "digest"> = {
    kind: "shardform-plan",
    formatVersion: PLAN_FORMAT_VERSION,
    toolVersion: args.toolVersion,
    specDigest: specDigest(args.spec),
    specFile: args.specFile,
    access: args.access ?? {},
    allow: { massRemoval: args.allowMassRemoval ?? false },
    observed: { fingerprint: fingerprint(args.observed), snapshot: args.observed },
    steps: args.steps,
    summary: summarize(args.observed, args.steps),
    notes: args.notes ?? [],
    warnings: args.warnings ?? [],
    ...(args.balance ? { balance: args.balance } : {}),
  };
  return { ...body, digest: planDigest(body) };
}
