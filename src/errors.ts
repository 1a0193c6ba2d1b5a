/**
 * Every error a user can cause or fix derives from ShardformError. Clipanion prints
 * errors carrying `clipanion: {type: "none"}` as "<Name>: <message>" without a stack.
 */
export class ShardformError extends Error {
  readonly clipanion = { type: "none" as const };
  /** Exit code the CLI returns for this error. */
  readonly exitCode: number = 1;
  override get name(): string {
    return this.constructor.name;
  }
  /**
   * A stable code for scripts and tests (--json, --json-log): the class name without "Error", in
   * upper snake case: StalePlanError -> STALE_PLAN, LockedError -> LOCKED. README lists them.
   */
  get code(): string {
    return errorCode(this.name);
  }
}

/** "ClusterChangedError" -> "CLUSTER_CHANGED"; "UsageError" -> "USAGE". */
export function errorCode(className: string): string {
  return className
    .replace(/Error$/, "")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toUpperCase();
}

export interface SpecProblem {
  file: string;
  line: number;
  col: number;
  /** JSON-pointer-like path inside the document, e.g. /shards/0/weight */
  path: string;
  message: string;
}

export class SpecValidationError extends ShardformError {
  readonly problems: SpecProblem[];
  constructor(problems: SpecProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? "" : "s"} in the spec:\n` +
        problems.map((p) => `  ${p.file}:${p.line}:${p.col}: ${p.message}`).join("\n"),
    );
    this.problems = problems;
  }
}

export const GENERIC_UNREACHABLE_HINT = "Check that the node is running and that host:port is right.";

/** A node that cannot be connected to, or whose connection broke. */
export class NodeUnreachableError extends ShardformError {
  readonly node: string;
  readonly causeMessage: string;
  /** What to do; a specific hint (TLS, not Redis) says more than the generic one. */
  readonly hint: string;
  constructor(node: string, causeMessage: string, hint = GENERIC_UNREACHABLE_HINT) {
    super(`cannot reach ${node}: ${causeMessage.replace(/\.$/, "")}. ${hint}`);
    this.node = node;
    this.causeMessage = causeMessage;
    this.hint = hint;
  }
}

/** A node that accepted the connection but did not answer a command in time (paused, overloaded, blocked). */
export class NodeTimeoutError extends ShardformError {
  readonly node: string;
  readonly command: string;
  constructor(node: string, command: string, ms: number) {
    super(`${node} did not answer ${command} within ${(ms / 1000).toFixed(ms < 1000 ? 1 : 0)} s: it may be paused, overloaded or blocked by a long command`);
    this.node = node;
    this.command = command;
  }
}

export class AuthFailedError extends ShardformError {
  readonly node: string;
  constructor(node: string, message: string) {
    super(message);
    this.node = node;
  }
}

/** The connection's user lacks a permission (ACL). */
export class PermissionError extends ShardformError {
  readonly node: string;
  constructor(node: string, message: string) {
    super(message);
    this.node = node;
  }
}

export class ClusterStateError extends ShardformError {}

export class PlanningError extends ShardformError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`cannot plan:\n` + problems.map((p) => `  - ${p}`).join("\n"));
    this.problems = problems;
  }
}

export class PlanFormatError extends ShardformError {
  readonly file: string;
  constructor(file: string, detail: string) {
    super(`${file} is not a usable shardform plan: ${detail}`);
    this.file = file;
  }
}

export class PlanTamperedError extends ShardformError {
  readonly file: string;
  readonly expected: string;
  readonly actual: string;
  constructor(file: string, expected: string, actual: string) {
    super(
      `${file} was changed after it was written (digest ${actual.slice(0, 12)} does not match the recorded ${expected.slice(0, 12)}). ` +
        `Plans must not be edited by hand: run \`shardform plan\` again to make a new one.`,
    );
    this.file = file;
    this.expected = expected;
    this.actual = actual;
  }
}

export class StalePlanError extends ShardformError {
  readonly expected: string;
  readonly actual: string;
  readonly changes: string[];
  constructor(expected: string, actual: string, changes: string[]) {
    super(
      `Saved plan is stale: the cluster changed since the plan was made ` +
        `(fingerprint ${expected.slice(0, 12)} -> ${actual.slice(0, 12)}).\n` +
        changes.map((c) => `  - ${c}`).join("\n") +
        `\nRun \`shardform plan\` again and review the new plan.`,
    );
    this.expected = expected;
    this.actual = actual;
    this.changes = changes;
  }
}

export class InputError extends ShardformError {}

export class SandboxError extends ShardformError {}

/** A broken invariant inside shardform itself. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`Assertion failed: ${what} (this is a bug in shardform)`);
}

export class StepFailedError extends ShardformError {
  readonly stepId: string;
  readonly kind: string;
  constructor(stepId: string, kind: string, detail: string) {
    super(`step ${stepId} (${kind}) failed: ${detail}`);
    this.stepId = stepId;
    this.kind = kind;
  }
}

/** The cluster is not what a step expects of it: something changed outside this apply. */
export class ClusterChangedError extends ShardformError {}

/**
 * The cluster is failing a shard over under a step (its master does not answer and no replica has
 * taken over yet, or the roles changed mid-step): a state that passes by itself, so the step is run
 * again, going on with whichever node serves the shard then.
 */
export class FailoverPendingError extends ShardformError {}

/** apply ran every step, but the cluster it finds at the end is not the plan's end state. */
export class EndStateError extends ShardformError {
  readonly differences: string[];
  constructor(differences: string[]) {
    super(
      `every step ran, but the cluster is not in the plan's end state:\n` +
        differences.map((d) => `  - ${d}`).join("\n") +
        `\nSomething changed the cluster during apply (a failover, a node restarted, another tool). Check it with \`shardform check\`, then run \`shardform plan\` again.`,
    );
    this.differences = differences;
  }
}

/**
 * apply ran every step and every slot is served, but the cluster failed shards over during apply
 * (safety rule 4): some slots are served by another node of the same shard than the plan gives.
 */
export class ShardsFailedOverError extends ShardformError {
  readonly failovers: string[];
  constructor(failovers: string[], specFile: string) {
    super(
      `every step ran and every key is served, but the cluster failed ${failovers.length} shard(s) over during apply, so they are served by other masters than the spec says:\n` +
        failovers.map((f) => `  - ${f}`).join("\n") +
        `\nRun \`shardform apply ${specFile}\` again to fail them back (its plan shows the failovers), or change the spec to keep the new masters.`,
    );
    this.failovers = failovers;
  }
}

export class LockedError extends ShardformError {}

/** The checkpoint could not be written (a read-only or full disk): apply stopped softly. */
export class CheckpointError extends ShardformError {}
