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

export class NodeUnreachableError extends ShardformError {
  readonly node: string;
  readonly causeMessage: string;
  constructor(node: string, causeMessage: string) {
    super(
      `cannot reach ${node}: ${causeMessage.replace(/\.$/, "")}. Check that the node is running and that host:port is right; ` +
        `for a password-protected cluster set --password-env VAR (or REDISCLI_AUTH).`,
    );
    this.node = node;
    this.causeMessage = causeMessage;
  }
}

export class AuthFailedError extends ShardformError {
  readonly node: string;
  constructor(node: string, causeMessage: string) {
    super(
      `${node} refused the credentials: ${causeMessage}. Check the password in the variable named by --password-env ` +
        `(or the spec's auth.passwordEnv / auth.passwordFile, or REDISCLI_AUTH) and the --user name.`,
    );
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
