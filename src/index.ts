/**
 * shardform as a library: `import { loadSpec, observe, plan, apply, check } from "shardform"`. The same
 * stages the CLI runs, for operators' scripts, bots and controllers: a spec in, the live cluster read, a
 * plan made (data, with renderers), the plan carried out with events and a checkpoint, the health read.
 * Errors are the CLI's (ShardformError subclasses, each with a stable `code`).
 */
import { loadSpec as loadSpecFile } from "./spec/load.js";
import { addLoad, observeSettled, planFrom } from "./cli/observe-input.js";
import { specNodes } from "./spec/nodes.js";
import { readPlan as readPlanFile, writePlan } from "./plan/file.js";
import { renderHuman } from "./plan/render/human.js";
import { renderMarkdown } from "./plan/render/markdown.js";
import { applyPlan as runPlan, type ApplyResult } from "./executor/apply.js";
import { DEFAULT_EXEC_OPTIONS, type ExecOptions } from "./executor/context.js";
import type { ProgressEvent } from "./executor/progress.js";
import { observeCluster } from "./observe/observe.js";
import { healthReport, type HealthReport } from "./check/report.js";
import type { Access } from "./redis/connect.js";
import type { ClusterSpec } from "./spec/types.js";
import type { ObservedCluster } from "./observe/types.js";
import type { Plan, Step } from "./plan/types.js";
import type { Migration } from "./planner/migration.js";

export {
  AuthFailedError,
  CheckpointError,
  ClusterChangedError,
  ClusterStateError,
  EndStateError,
  FailoverPendingError,
  InputError,
  LockedError,
  NodeTimeoutError,
  NodeUnreachableError,
  PermissionError,
  PlanFormatError,
  PlanTamperedError,
  PlanningError,
  ShardformError,
  ShardsFailedOverError,
  SpecValidationError,
  StalePlanError,
  StepFailedError,
  errorCode,
} from "./errors.js";
export { ResumeMismatchError } from "./executor/apply.js";
export type { ApplyResult, ClusterSpec, ExecOptions, HealthReport, ObservedCluster, Plan, ProgressEvent, Step };
export { TOOL_VERSION as version } from "./version.js";

/** How to reach the nodes. Secrets are given here, never read from a spec or written into a plan. */
export interface ConnectOptions {
  /** An ACL user (default: the default user). */
  user?: string;
  password?: string;
  /** TLS: PEM contents (not paths); `insecure` skips verification, as redis-cli --insecure does. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; servername?: string; insecure?: boolean };
}

function access(c: ConnectOptions | undefined, clientName: string): Access {
  const pem = (v: string | Buffer | undefined): Buffer | undefined => (v === undefined ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(v));
  return {
    clientName,
    ...(c?.password !== undefined || c?.user !== undefined ? { credentials: { user: c.user, password: c.password, source: "the library caller" } } : {}),
    ...(c?.tls ? { tls: { ca: pem(c.tls.ca), cert: pem(c.tls.cert), key: pem(c.tls.key), servername: c.tls.servername, insecure: c.tls.insecure } } : {}),
  };
}

/** Reads and checks a spec file (YAML + schema + meaning); throws SpecValidationError with file:line:col. */
export function loadSpec(file: string): ClusterSpec {
  return loadSpecFile(file).spec;
}

/** Reads the live cluster through `seeds` (read-only connections), waiting up to `settleMs` for members to agree. */
export async function observe(opts: { seeds: string[]; probe?: string[]; connect?: ConnectOptions; settleMs?: number }): Promise<ObservedCluster> {
  return observeSettled({ seeds: opts.seeds, probe: opts.probe ?? [], access: access(opts.connect, "shardform-lib-observe") }, opts.settleMs ?? 15_000, () => {});
}

/**
 * Plans a spec against the live cluster (or a topology observed before): the plan as data, with its
 * summary, warnings and fingerprint. Save it with `savePlan` for `apply`.
 */
export async function plan(
  specFile: string,
  opts: { observed?: ObservedCluster; connect?: ConnectOptions; allowMassRemoval?: boolean; migration?: Migration; settleMs?: number } = {},
): Promise<Plan> {
  const spec = loadSpec(specFile);
  const a = access(opts.connect, "shardform-lib-plan");
  const observed = opts.observed ?? (await observeSettled({ seeds: spec.seeds, probe: specNodes(spec), access: a }, opts.settleMs ?? 15_000, () => {}));
  if (!opts.observed && spec.balanceBy) await addLoad(observed, spec.balanceBy, a, () => {});
  return planFrom({ spec, specFile, observed, source: {}, access: a, allowMassRemoval: opts.allowMassRemoval ?? false, migration: opts.migration ?? "auto" });
}

/** Writes a plan file (stable JSON with its digest), as `plan --out` does. */
export function savePlan(file: string, p: Plan): void {
  writePlan(file, p);
}

/** Reads a plan file; a plan edited by hand or of another format is refused. */
export function readPlan(file: string): Plan {
  return readPlanFile(file);
}

/** The plan as the terminal shows it, or as a pull-request comment. */
export function renderPlan(p: Plan, format: "text" | "markdown" = "text"): string {
  return format === "markdown" ? renderMarkdown(p) : renderHuman(p, { color: false });
}

/**
 * Carries out a saved plan, as `apply PLAN --auto-approve` does: checkpoint beside the plan (or in
 * `stateDir`), resumed when run again after an interruption; `onEvent` hears every step and note.
 * Resolves when the cluster is in the plan's end state; throws otherwise (StalePlanError, LockedError ...).
 */
export async function apply(
  planFile: string,
  opts: { connect?: ConnectOptions; onEvent?: (e: ProgressEvent) => void; stateDir?: string; lockDir?: string; restart?: boolean; exec?: Partial<ExecOptions>; lockTimeoutMs?: number } = {},
): Promise<ApplyResult> {
  const p = readPlanFile(planFile);
  return runPlan(p, {
    planFile,
    stateDir: opts.stateDir,
    lockDir: opts.lockDir,
    restart: opts.restart ?? false,
    access: access(opts.connect, "shardform-lib-apply"),
    exec: { ...DEFAULT_EXEC_OPTIONS, ...opts.exec },
    emit: opts.onEvent ?? (() => {}),
    ...(opts.lockTimeoutMs !== undefined ? { lockTimeoutMs: opts.lockTimeoutMs } : {}),
  });
}

/** The cluster's health, as `check --json` reports it (`healthy`, problems, warnings, imbalance ...). */
export async function check(opts: { seeds: string[]; connect?: ConnectOptions }): Promise<HealthReport> {
  return healthReport(await observeCluster({ seeds: opts.seeds, access: access(opts.connect, "shardform-lib-check") }));
}
