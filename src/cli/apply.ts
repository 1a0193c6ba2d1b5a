import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { Command, Option } from "clipanion";
import { ClusterCommand, intOption, migrationOption, numberOption } from "./base.js";
import { DEFAULT_SETTLE_S, loadTopology, planFrom, readHistory } from "./observe-input.js";
import { progressPrinter } from "./progress.js";
import { DEFAULT_LOAD_WINDOW_S } from "../observe/load.js";
import { loadSpec } from "../spec/load.js";
import { specNodes } from "../spec/nodes.js";
import { parsePlan, writePlan } from "../plan/file.js";
import { renderHuman } from "../plan/render/human.js";
import type { Plan } from "../plan/types.js";
import { applyPlan, hasResumableCheckpoint, lockCluster, observeUnderLocks } from "../executor/apply.js";
import type { ObservedCluster } from "../observe/types.js";
import { DEFAULT_EXEC_OPTIONS, type ExecCtx } from "../executor/context.js";
import { InputError, LockedError } from "../errors.js";
import type { Access } from "../redis/connect.js";

/** Signals that stop an apply as a first Ctrl-C does, and the exit code of that stop (128 + the signal's number). */
const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

export class ApplyCommand extends ClusterCommand {
  static override paths = [["apply"]];
  static override usage = Command.Usage({
    description: "carry out a plan, checkpointing every step",
    details: `
      With a saved PLAN (from \`plan --out\`), carries it out. With a SPEC, plans first, prints the plan and asks for
      confirmation (or --auto-approve; without a terminal and without --auto-approve it refuses).

      Before the first step the cluster is observed again, under apply's locks (apply SPEC --auto-approve does it while
      it plans): a plan made against another state is refused as stale, and a plan file edited by hand is refused. Steps run as a graph: every step whose needs are done may start, up to the
      number set by --parallelism at once. A unit of work is a window of slot moves between one source and one target
      (--window slots whose commands share pipelines; a pair's next window moves keys while the one before is handed
      over), or all ready steps of another kind together (they share one wait for the cluster to agree).

      A checkpoint (PLAN.checkpoint.json, or in --state-dir) records every step done and in flight; running the same
      command again after an interruption checks the cluster against it and continues. The first Ctrl-C lets the steps
      in flight finish (so no slot stays open) and stops; a second Ctrl-C stops at once.

      States that pass by themselves (CLUSTERDOWN during a failover, LOADING, a node that does not answer for a while)
      are waited out, with a line saying what apply waits for; --wait-timeout bounds every wait (those retries, and the
      waits for new nodes to be known, replicas to sync, failovers and the final agreement). At the end apply observes
      the cluster and compares it with the plan's end state (read again for up to max(5 s, 2 x cluster-node-timeout)
      while the cluster settles): any difference is an error, never "complete". A member that is down and that no step
      acts on is a warning. A failover step is done once the old master follows its replica; a replica that does not
      take over is asked again.

      When the cluster fails a source or a target over during apply (a master paused or killed), the slot moves go on
      from (into) the replica it promoted, and no slot is handed over while another master holds keys of it. Apply then
      exits 1 naming each shard that changed roles (ShardsFailedOverError); running the same apply SPEC again fails them
      back. A checkpoint that cannot be written stops apply the same way as a first Ctrl-C, with exit 1.

      While apply runs it holds the cluster's lock: a lock file per node id (in --lock-dir) and a lease in the cluster
      (named connections on every node). A second apply that touches any of the nodes is refused, naming the holder;
      with --lock-timeout S it waits up to S seconds for them first, saying whom it waits for (as Terraform's).
      The lease is checked again before units of work start: an apply that finds another apply's older lease (its own
      was ended by force-unlock, or lost) stops as after a failure, with exit 1, and resumes later from its checkpoint.

      SIGTERM and SIGHUP stop apply as a first Ctrl-C does; the command that resumes it, printed at the stop, repeats
      the flags that shaped the run (--state-dir, --lock-dir, --max-keys-per-second, --parallelism, --window, ...).

      Exit codes: 0 applied (or nothing to do), 1 error, 130 stopped by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (all
      three resumable).
    `,
    examples: [
      ["Apply a reviewed plan", "$0 apply plan.json"],
      ["Plan, confirm and apply a spec", "$0 apply cluster.yaml"],
      ["Resume after an interruption", "$0 apply plan.json --auto-approve"],
      ["Machine-readable progress", "$0 apply plan.json --json-log > apply.log"],
      ["Gentle on a busy cluster", "$0 apply plan.json --max-keys-per-second 20000 --parallelism 2"],
      ["Keep what clients wait for under 2 ms (99th percentile) while keys move", "$0 apply plan.json --max-latency-ms 2"],
      ["Move one slot at a time, as redis-cli does", "$0 apply plan.json --window 1 --parallelism 1"],
      ["Wait up to 5 minutes for another apply to finish", "$0 apply plan.json --lock-timeout 300"],
    ],
  });
  target = Option.String({ name: "PLAN|SPEC" });
  autoApprove = Option.Boolean("--auto-approve", false, { description: "Do not ask for confirmation" });
  stateDir = Option.String("--state-dir", { description: "Where the checkpoint lives (default: beside the plan); made when missing, if its parent exists" });
  lockDir = Option.String("--lock-dir", { description: "Directory of the node lock files (default: $SHARDFORM_LOCK_DIR, else a directory of your own, mode 0700, in the temp directory); put it on shared storage to share it between machines" });
  lockTimeout = Option.String("--lock-timeout", { description: "Seconds to wait for another apply's locks and lease before giving up (default 0: refused at once)" });
  restart = Option.Boolean("--restart", false, { description: "Ignore an existing checkpoint and start from the first step (the plan must not be stale)" });
  jsonLog = Option.Boolean("--json-log", false, { description: "Print progress as JSON lines on stdout" });
  pipeline = Option.String("--pipeline", { description: `Keys per MIGRATE command (default ${DEFAULT_EXEC_OPTIONS.pipeline})` });
  window = Option.String("--window", {
    description: `Slots of one source->target pair moved together: their SETSLOT, GETKEYSINSLOT and MIGRATE commands share pipelines (default ${DEFAULT_EXEC_OPTIONS.window}; 1 = one slot at a time, like redis-cli)`,
  });
  atomicWindow = Option.String("--atomic-window", {
    description: "Slots of one server-side migration (Valkey 9 CLUSTER MIGRATESLOTS) of a source->target pair (default: every slot of the pair that is ready)",
  });
  parallelism = Option.String("--parallelism", {
    description: `Units of work at once: windows of different source->target pairs, or batches of other steps (default ${DEFAULT_EXEC_OPTIONS.parallelism}; 1 = one after another)`,
  });
  migrateTimeout = Option.String("--migrate-timeout", {
    description: `MIGRATE's I/O timeout in ms (default ${DEFAULT_EXEC_OPTIONS.migrateTimeoutMs}); batches in flight use at most cluster-node-timeout/32 each, so that a target that stops answering cannot block a source for more than half of cluster-node-timeout; for a key that does not move within it, it grows fourfold per retry, never past a quarter of cluster-node-timeout`,
  });
  waitTimeout = Option.String("--wait-timeout", {
    description: `Seconds any wait may take: retries of a step through CLUSTERDOWN/LOADING/a node not answering, new nodes being known, replicas syncing, failovers, the final agreement (default ${DEFAULT_EXEC_OPTIONS.waitTimeoutMs / 1000})`,
  });
  maxKeysPerSecond = Option.String("--max-keys-per-second", { description: "Move at most this many keys per second, over all pairs (default: no limit)" });
  maxLatencyMs = Option.String("--max-latency-ms", {
    description:
      "A latency budget for clients while keys move: apply PINGs every source and target from a thread of its own every 2 ms and slows the key moves (fewer MIGRATEs at a time, fewer keys per second, smaller batches) whenever the 99th percentile of that wait over the last two seconds is above this many ms, and speeds them up again below it (default: no budget). The server's own migration (Valkey 9) is not paced",
  });
  allowMassRemoval = Option.Boolean("--allow-mass-removal", false, { description: "With a SPEC: permit removing half or more of the masters that own slots" });
  migration = Option.String("--migration", { description: "With a SPEC: how slots move: auto (default; the server's own migration where both ends have it, Valkey 9+), atomic, keys" });
  history = Option.Array("--history", {
    description: "With a SPEC: an earlier plan whose slot moves explain keys left on a node that no longer owns their slot (repeatable; the spec's last plan, SPEC.plan.json, is always read)",
  });
  loadWindow = Option.String("--load-window", { description: `With a SPEC balancing by cpu: seconds between the two CPU readings per slot (default ${DEFAULT_LOAD_WINDOW_S})` });
  settleTimeout = Option.String("--settle-timeout", { description: `With a SPEC: seconds to wait for members that disagree to converge before planning (default ${DEFAULT_SETTLE_S})` });

  async run(): Promise<number> {
    const exec = {
      ...DEFAULT_EXEC_OPTIONS,
      pipeline: intOption(this.pipeline, "--pipeline", DEFAULT_EXEC_OPTIONS.pipeline, 1),
      window: intOption(this.window, "--window", DEFAULT_EXEC_OPTIONS.window, 1),
      ...(this.atomicWindow !== undefined ? { atomicWindow: intOption(this.atomicWindow, "--atomic-window", 0, 1) } : {}),
      parallelism: intOption(this.parallelism, "--parallelism", DEFAULT_EXEC_OPTIONS.parallelism, 1),
      migrateTimeoutMs: intOption(this.migrateTimeout, "--migrate-timeout", DEFAULT_EXEC_OPTIONS.migrateTimeoutMs, 1),
      waitTimeoutMs: intOption(this.waitTimeout, "--wait-timeout", DEFAULT_EXEC_OPTIONS.waitTimeoutMs / 1000, 1) * 1000,
      maxKeysPerSecond: intOption(this.maxKeysPerSecond, "--max-keys-per-second", 0, 1),
      maxLatencyMs: numberOption(this.maxLatencyMs, "--max-latency-ms", 0, 0.1),
    };
    this.lockTimeoutMs(); // checked with the other options, before anything is made or read
    // A state directory that does not exist yet is made (its parent must exist: a typo stays visible).
    if (this.stateDir && !existsSync(this.stateDir)) {
      try {
        mkdirSync(this.stateDir, { mode: 0o700 });
      } catch (err) {
        throw new InputError(`--state-dir ${this.stateDir} does not exist and cannot be made (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): create it, or give another directory`);
      }
    }
    const text = (() => {
      try {
        return readFileSync(this.target, "utf8");
      } catch (err) {
        throw new InputError(`cannot read ${this.target}: ${(err as Error).message}`);
      }
    })();
    if (text.trimStart().startsWith("{")) {
      const plan = parsePlan(text, this.target);
      const { access } = this.access({ plan: plan.access }, "shardform-apply");
      return this.runPlan(plan, this.target, access, exec, false);
    }
    const settleMs = intOption(this.settleTimeout, "--settle-timeout", DEFAULT_SETTLE_S, 0) * 1000;
    const { spec } = loadSpec(this.target);
    const { access, source } = this.access({ spec, specFile: this.target }, "shardform-apply");
    const observed = await loadTopology({
      seeds: spec.seeds,
      probe: specNodes(spec),
      access,
      status: (m) => this.status(m),
      say: (m) => this.say(m),
      settleMs,
      measure: spec.balanceBy,
      loadWindowS: intOption(this.loadWindow, "--load-window", DEFAULT_LOAD_WINDOW_S, 1),
    });
    // The lock is taken before the plan is shown and written, and held through the apply.
    const unlock = await lockCluster(observed, access, this.lockDir, `apply ${resolve(this.target)}`, { timeoutMs: this.lockTimeoutMs(), onWait: (m) => this.say(m) });
    try {
      // With nobody to ask, apply's own look at the cluster under the locks runs while the plan is made.
      const live = this.autoApprove ? observeUnderLocks(observed, access) : undefined;
      live?.catch(() => undefined); // awaited by applyPlan; unused when there is nothing to apply
      const planFile = join(this.stateDir ? resolve(this.stateDir) : dirname(resolve(this.target)), `${basename(this.target).replace(/\.ya?ml$/, "")}.plan.json`);
      // The last plan of this spec explains keys its moves may have left behind (safety rule 9).
      const history = [...readHistory(this.history ?? []), ...this.lastPlanHistory(planFile)];
      const plan = await planFrom({ spec, specFile: this.target, observed, source, allowMassRemoval: this.allowMassRemoval, access, history, migration: migrationOption(this.migration) });
      if (!this.jsonLog) this.out(renderHuman(plan, { color: this.useColor() }));
      if (!plan.summary.changes) return 0;
      if (!(await this.confirm())) return 1;
      writePlan(planFile, plan);
      const saved = `Saved the plan to ${planFile} (its checkpoint goes beside it; --state-dir puts both elsewhere).`;
      if (this.jsonLog) this.status(saved);
      else this.say(saved);
      // A plan made from a spec just now supersedes any checkpoint of an earlier plan of that spec.
      return await this.runPlan(plan, planFile, access, exec, true, live);
    } finally {
      await unlock();
    }
  }

  private async runPlan(plan: Plan, planFile: string, access: Access, exec: typeof DEFAULT_EXEC_OPTIONS, fresh: boolean, live?: Promise<ObservedCluster>): Promise<number> {
    if (plan.steps.length === 0) {
      this.out("No changes. Nothing to apply.\n");
      return 0;
    }
    const totalSlots = plan.steps.filter((s) => s.kind === "migrate-slot").length;
    const stream = this.jsonLog ? this.context.stdout : this.context.stderr;
    const mode = this.jsonLog ? "json" : (this.context.stderr as NodeJS.WriteStream).isTTY ? "tty" : "plain";
    const emit = progressPrinter(mode, stream, totalSlots);
    const resume = this.resumeCommand(planFile);
    let ctxRef: ExecCtx | undefined;
    let interrupts = 0;
    let stopCode: number = STOP_SIGNALS.SIGINT;
    // SIGTERM (a service manager, a CI job cancelled) and SIGHUP (a closed terminal) stop as a first Ctrl-C does.
    const onSignal = (sig: NodeJS.Signals): void => {
      interrupts++;
      stopCode = STOP_SIGNALS[sig as keyof typeof STOP_SIGNALS] ?? stopCode;
      if (interrupts > 1) {
        this.context.stderr.write(`\nStopped at once; slots in flight may stay open until you resume with: ${resume}\n`);
        process.exit(stopCode);
      }
      if (ctxRef) ctxRef.stop = "soft";
      this.context.stderr.write(
        `\n${sig === "SIGINT" ? "" : `${sig} received. `}Stopping: finishing the steps in flight, so that no slot stays open and no node is left half removed (Ctrl-C again to quit at once) ...\n`,
      );
    };
    for (const sig of Object.keys(STOP_SIGNALS)) process.on(sig, onSignal);
    try {
      const result = await applyPlan(plan, {
        planFile,
        live,
        stateDir: this.stateDir,
        lockDir: this.lockDir,
        restart: this.restart || fresh,
        access,
        exec,
        emit,
        onContext: (c) => (ctxRef = c),
        lockTimeoutMs: this.lockTimeoutMs(),
      });
      if (result.status === "stopped") {
        this.context.stderr.write(`Stopped with ${result.done} of ${result.total} step(s) done; the checkpoint is ${result.journalFile}.\nResume with: ${resume}\n`);
        return stopCode;
      }
      return 0;
    } catch (err) {
      // Refused by another apply's lock: resuming now would be refused the same way; force-unlock is the way on.
      if (err instanceof LockedError) {
        const member = plan.observed.snapshot.nodes[0]?.addr ?? "HOST:PORT";
        throw new LockedError(err.message.replace(/`shardform force-unlock(?: --seed (\S+))?`/, (_m, seed?: string) => `\`shardform force-unlock --seed ${seed ?? member} --plan ${planFile}\``));
      }
      if (hasResumableCheckpoint(plan, planFile, this.stateDir)) {
        this.context.stderr.write(`The checkpoint is consistent; after fixing the cause, resume with: ${resume}\n`);
      }
      throw err;
    } finally {
      for (const sig of Object.keys(STOP_SIGNALS)) process.off(sig, onSignal);
    }
  }

  /** The slot moves of the spec's last plan, if it is there and readable (an unreadable one is only mentioned). */
  private lastPlanHistory(planFile: string): ReturnType<typeof readHistory> {
    if (!existsSync(planFile)) return [];
    try {
      return readHistory([planFile], this.stateDir);
    } catch (err) {
      this.say(`Not reading the spec's last plan ${planFile} as history: ${(err as Error).message}`);
      return [];
    }
  }

  private lockTimeoutMs(): number {
    return intOption(this.lockTimeout, "--lock-timeout", 0, 0) * 1000;
  }

  /** The command that resumes this apply, with the flags that shaped its run. */
  private resumeCommand(planFile: string): string {
    const flags: [string, string | undefined][] = [
      ["--state-dir", this.stateDir],
      ["--lock-dir", this.lockDir],
      ["--lock-timeout", this.lockTimeout],
      ["--max-keys-per-second", this.maxKeysPerSecond],
      ["--max-latency-ms", this.maxLatencyMs],
      ["--parallelism", this.parallelism],
      ["--window", this.window],
      ["--atomic-window", this.atomicWindow],
      ["--pipeline", this.pipeline],
      ["--migrate-timeout", this.migrateTimeout],
      ["--wait-timeout", this.waitTimeout],
    ];
    return [`shardform apply ${planFile} --auto-approve`, ...flags.filter(([, v]) => v !== undefined).map(([f, v]) => `${f} ${v}`)].join(" ");
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
