import { readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { Command, Option } from "clipanion";
import { ClusterCommand, intOption } from "./base.js";
import { planSpec } from "./observe-input.js";
import { progressPrinter } from "./progress.js";
import { loadSpec } from "../spec/load.js";
import { parsePlan, writePlan } from "../plan/file.js";
import { renderHuman } from "../plan/render/human.js";
import type { Plan } from "../plan/types.js";
import { applyPlan } from "../executor/apply.js";
import { DEFAULT_EXEC_OPTIONS, type ExecCtx } from "../executor/context.js";
import { InputError } from "../errors.js";

export class ApplyCommand extends ClusterCommand {
  static override paths = [["apply"]];
  static override usage = Command.Usage({
    description: "carry out a plan, checkpointing every step",
    details: `
      With a saved PLAN (from \`plan --out\`), carries it out. With a SPEC, plans first, prints the plan and asks for
      confirmation (or --auto-approve; without a terminal and without --auto-approve it refuses).

      Before the first step the cluster is observed again: a plan made against another state is refused as stale, and a
      plan file edited by hand is refused. A checkpoint (PLAN.checkpoint.json, or in --state-dir) is written before and after every
      step (slot moves: every window of slots); running the same command again after an interruption resumes where it
      stopped. Ctrl-C stops after the current batch of keys.

      Slot moves: consecutive moves between one source and target go in windows (--window) whose commands share
      pipelines, with all slots of a window in flight, and different pairs move at the same time (--parallel).

      Exit codes: 0 applied (or nothing to do), 1 error, 130 stopped by Ctrl-C (resumable).
    `,
    examples: [
      ["Apply a reviewed plan", "$0 apply plan.json"],
      ["Plan, confirm and apply a spec", "$0 apply cluster.yaml"],
      ["Resume after an interruption", "$0 apply plan.json --auto-approve"],
      ["Machine-readable progress", "$0 apply plan.json --json-log > apply.log"],
      ["Move one slot at a time, as redis-cli does", "$0 apply plan.json --window 1 --parallel 1"],
    ],
  });
  target = Option.String({ name: "PLAN|SPEC" });
  autoApprove = Option.Boolean("--auto-approve", false, { description: "Do not ask for confirmation" });
  stateDir = Option.String("--state-dir", { description: "Where the checkpoint and lock live (default: beside the plan)" });
  restart = Option.Boolean("--restart", false, { description: "Ignore an existing checkpoint and start from the first step (the plan must not be stale)" });
  jsonLog = Option.Boolean("--json-log", false, { description: "Print progress as JSON lines on stdout" });
  pipeline = Option.String("--pipeline", { description: `Keys per MIGRATE command (default ${DEFAULT_EXEC_OPTIONS.pipeline})` });
  window = Option.String("--window", {
    description: `Slots of one source->target pair moved together: their SETSLOT, GETKEYSINSLOT and MIGRATE commands share pipelines (default ${DEFAULT_EXEC_OPTIONS.window}; 1 = one slot at a time, like redis-cli)`,
  });
  migrateTimeout = Option.String("--migrate-timeout", {
    description: `MIGRATE's I/O timeout in ms (default ${DEFAULT_EXEC_OPTIONS.migrateTimeoutMs}); for a key that does not move within it, it grows fourfold per retry up to 50 s`,
  });
  parallel = Option.String("--parallel", {
    description: `Source->target pairs moving slots at the same time (default ${DEFAULT_EXEC_OPTIONS.parallel}; 1 = one pair after another)`,
  });

  async run(): Promise<number> {
    const text = (() => {
      try {
        return readFileSync(this.target, "utf8");
      } catch (err) {
        throw new InputError(`cannot read ${this.target}: ${(err as Error).message}`);
      }
    })();
    let plan: Plan;
    let planFile: string;
    let credentials;
    const specMode = !text.trimStart().startsWith("{");
    if (!specMode) {
      plan = parsePlan(text, this.target);
      planFile = this.target;
      credentials = this.credentials();
    } else {
      const { spec } = loadSpec(this.target);
      credentials = this.credentials(spec.auth, this.target);
      plan = await planSpec({ spec, specFile: this.target, credentials, status: (m) => this.status(m) });
      if (!this.jsonLog) this.out(renderHuman(plan, { color: this.useColor() }));
      if (!plan.summary.changes) return 0;
      if (!(await this.confirm())) return 1;
      planFile = join(this.stateDir ? resolve(this.stateDir) : dirname(resolve(this.target)), `${basename(this.target).replace(/\.ya?ml$/, "")}.plan.json`);
      writePlan(planFile, plan);
      this.status(`Saved the plan to ${planFile}.`);
    }
    if (plan.steps.length === 0) {
      this.out("No changes. Nothing to apply.\n");
      return 0;
    }
    const totalSlots = plan.steps.filter((s) => s.kind === "migrate-slot").length;
    const mode = this.jsonLog ? "json" : (this.context.stderr as NodeJS.WriteStream).isTTY ? "tty" : "plain";
    const emit = progressPrinter(mode, this.jsonLog ? this.context.stdout : this.context.stderr, totalSlots);
    const resume = `shardform apply ${planFile} --auto-approve${this.stateDir ? ` --state-dir ${this.stateDir}` : ""}`;
    let ctxRef: ExecCtx | undefined;
    let interrupts = 0;
    const onSigint = (): void => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      if (ctxRef) ctxRef.stopRequested = true;
      this.context.stderr.write(`\nStopping after the current batch (Ctrl-C again to quit at once) ...\n`);
    };
    process.on("SIGINT", onSigint);
    try {
      const result = await applyPlan(plan, {
        planFile,
        stateDir: this.stateDir,
        // A plan made from a spec just now supersedes any checkpoint of an earlier plan of that spec.
        restart: this.restart || specMode,
        credentials,
        exec: {
          ...DEFAULT_EXEC_OPTIONS,
          pipeline: intOption(this.pipeline, "--pipeline", DEFAULT_EXEC_OPTIONS.pipeline, 1),
          window: intOption(this.window, "--window", DEFAULT_EXEC_OPTIONS.window, 1),
          parallel: intOption(this.parallel, "--parallel", DEFAULT_EXEC_OPTIONS.parallel, 1),
          migrateTimeoutMs: intOption(this.migrateTimeout, "--migrate-timeout", DEFAULT_EXEC_OPTIONS.migrateTimeoutMs, 1),
        },
        emit,
        onContext: (c) => (ctxRef = c),
      });
      if (result.status === "stopped") {
        this.context.stderr.write(`Stopped after step ${result.completed} of ${result.total}; the checkpoint is ${result.journalFile}.\nResume with: ${resume}\n`);
        return 130;
      }
      return 0;
    } catch (err) {
      this.context.stderr.write(`The checkpoint stays consistent; after fixing the cause, resume with: ${resume}\n`);
      throw err;
    } finally {
      process.off("SIGINT", onSigint);
    }
  }

  private async confirm(): Promise<boolean> {
    if (this.autoApprove) return true;
    const stdin = this.context.stdin as NodeJS.ReadStream;
    if (!stdin.isTTY) {
      throw new InputError("refusing to apply without confirmation: stdin is not a terminal. Review the plan and pass --auto-approve, or save it with `plan --out` and `apply` that file.");
    }
    const rl = createInterface({ input: stdin, output: this.context.stdout });
    const answer = await rl.question("\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: ");
    rl.close();
    if (answer.trim() !== "yes") {
      this.out("Apply cancelled.\n");
      return false;
    }
    return true;
  }
}
