import { existsSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { Command, Option } from "clipanion";
import { ClusterCommand, seedsOption } from "./base.js";
import { observeCluster } from "../observe/observe.js";
import { defaultLockDir, listLocks, nodeLockFile, removeLock } from "../executor/lock.js";
import { journalPath } from "../executor/journal.js";
import { NodeClient } from "../redis/connect.js";
import { parseClientList, parseLeaseName } from "../redis/client-list.js";
import { InputError } from "../errors.js";
import { mapLimit } from "../util/limit.js";

export class ForceUnlockCommand extends ClusterCommand {
  static override paths = [["force-unlock"]];
  static override usage = Command.Usage({
    description: "remove the locks of an apply that is gone or hung",
    details: `
      Like \`terraform force-unlock\`: for when an apply died on another machine, or hangs, and keeps the cluster locked.
      It ends the holder's lease connections on every member (CLIENT KILL) and removes the node lock files of the
      cluster's nodes in the lock directory (and, with --plan, that plan's checkpoint lock). It does not stop a
      process that is still running: make sure the holder is really gone first. The checkpoint is kept, so the
      interrupted apply can be resumed.

      Asks for confirmation unless --auto-approve. Exit 0 when done (or nothing was locked), 1 on error.
    `,
    examples: [
      ["Unlock a cluster", "$0 force-unlock --seed 127.0.0.1:7000"],
      ["Also the checkpoint lock of a plan", "$0 force-unlock --seed 127.0.0.1:7000 --plan plan.json"],
    ],
  });
  seed = Option.Array("--seed", { description: "A reachable member, HOST:PORT (repeatable; required unless --spec gives seeds)" });
  spec = Option.String("--spec", { description: "Take the seeds, auth and TLS from this spec (flags given win)" });
  lockDir = Option.String("--lock-dir", { description: "Directory of the node lock files (default: $SHARDFORM_LOCK_DIR, else a directory of your own, mode 0700, in the temp directory)" });
  plan = Option.String("--plan", { description: "Also remove this plan's checkpoint lock" });
  stateDir = Option.String("--state-dir", { description: "Where that plan's checkpoint lives (as given to apply)" });
  autoApprove = Option.Boolean("--auto-approve", false, { description: "Do not ask for confirmation" });

  async run(): Promise<number> {
    if (this.plan && !existsSync(this.plan)) throw new InputError(`--plan ${this.plan} does not exist: give the plan file the apply ran (its checkpoint lock sits beside it, or in --state-dir)`);
    const { spec, access } = this.specAndAccess(this.spec, "shardform-force-unlock");
    const observed = await observeCluster({ seeds: seedsOption(this.seed, spec), access });
    const dir = this.lockDir ?? defaultLockDir();
    const ids = new Set([...observed.nodes.map((n) => n.id), ...observed.outsiders.flatMap((o) => (o.id ? [o.id] : []))]);
    const files = listLocks(dir).filter((l) => [...ids].some((id) => l.file.startsWith(nodeLockFile(dir, id))));
    if (this.plan) {
      const f = `${journalPath(this.plan, this.stateDir)}.lock`;
      files.push(...listLocks(journalPath(this.plan, this.stateDir).replace(/[^/]+$/, "")).filter((l) => l.file.startsWith(f)));
    }
    const holders = observed.applies ?? [];
    if (files.length === 0 && holders.length === 0) {
      this.out("Nothing is locked: no lease in the cluster, no lock file for its nodes.\n");
      return 0;
    }
    this.out("These locks will be removed:\n");
    for (const h of holders) this.out(`  lease of pid ${h.pid} on ${h.host}, started ${h.since}, on ${h.nodes.length} node(s)\n`);
    for (const l of files) {
      const who = l.holder ? `pid ${l.holder.pid} on ${l.holder.host}, started ${l.holder.startedAt}${l.alive === true ? " (STILL RUNNING)" : l.alive === false ? " (dead)" : ""}` : "unreadable";
      this.out(`  ${l.file}: ${who}\n`);
    }
    if (!(await this.confirm())) return 1;
    let killed = 0;
    await mapLimit(
      observed.nodes.filter((n) => n.reachable),
      16,
      async (n) => {
        const c = await NodeClient.connect(n.addr, { access });
        try {
          for (const e of parseClientList(String(await c.call("client", "list", "type", "normal")))) {
            if (parseLeaseName(e.name)) {
              await c.call("client", "kill", "id", e.id);
              killed++;
            }
          }
        } finally {
          await c.close();
        }
      },
    );
    for (const l of files) removeLock(l.file);
    this.out(`Ended ${killed} lease connection(s) and removed ${files.length} lock file(s).\n`);
    return 0;
  }

  private async confirm(): Promise<boolean> {
    if (this.autoApprove) return true;
    const stdin = this.context.stdin as NodeJS.ReadStream;
    if (!stdin.isTTY) throw new InputError("refusing to unlock without confirmation: stdin is not a terminal. Pass --auto-approve.");
    const rl = createInterface({ input: stdin, output: this.context.stdout });
    const answer = await rl.question("\nOnly do this if that apply is gone or hung. Remove these locks? Only 'yes' will be accepted.\n  Enter a value: ");
    rl.close();
    return answer.trim() === "yes";
  }
}
