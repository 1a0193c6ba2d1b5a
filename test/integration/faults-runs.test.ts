/**
 * Faults around apply runs, each ending with the full checks (every key back with its value, views
 * agree, no open slot, no stray key, redis-cli --cluster check clean, plan of the spec reports no changes):
 *  - apply killed in the last window of a scale-in, after the drained master gave away its last slot
 *    and turned into a replica (its replica following it): the same command resumes;
 *  - a second apply of a different spec, planned after the first's `meet`: refused by the lock, and
 *    `plan` says an apply is in progress;
 *  - an apply whose lease connection is ended while another apply takes the lease: it stops before its
 *    next unit, and the same command resumes it later;
 *  - --lock-timeout: an apply waits for another process's lock instead of being refused at once;
 *  - `plan` of a spec whose last apply was killed points at that checkpoint and the command that resumes it;
 *  - a master that died, was forgotten, and came back with its old nodes.conf: with allowReset the
 *    plan resets and re-adds it, and applying that fresh plan is not refused as stale.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { observeCluster } from "../../src/observe/observe.js";
import { populate } from "../../src/testdata/populate.js";
import { startNodes, waitConsistent, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { runChild } from "../helpers/child.js";
import { fullChecks } from "../helpers/verify.js";
import { NodeClient } from "../../src/redis/connect.js";
import { leaseName, parseClientList, parseLeaseName } from "../../src/redis/client-list.js";

// Ports 21700-21709 (bus 31700-31709): this file's own range.
const BASE = 21700;
const KEYS = 30_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

function spec(name: string, shards: [number, number[]][], extra: string[] = []): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}", "${a(1)}", "${a(2)}"]`, ...extra.map((l) => `  ${l}`), `shards:`];
  for (const [m, reps] of shards) lines.push(`  - master: ${a(m)}`, ...(reps.length ? [`    replicas: [${reps.map(a).join(", ")}]`] : []));
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}
const three = (name: string) => spec(name, [[0, [4]], [1, [5]], [2, [6]]]);
const four = (name: string) => spec(name, [[0, [4]], [1, [5]], [2, [6]], [3, [7]]]);

beforeAll(async () => {
  sb = await startNodes(BASE, 10);
  work = mkdtempSync(join(tmpdir(), "shardform-faults-runs-"));
  expect((await runCli(["apply", four("create"), "--auto-approve"])).code).toBe(0);
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
});
afterAll(async () => {
  await sb?.stop();
});

describe("faults around apply runs", { timeout: 180_000 }, () => {
  it("killed in the last window of a scale-in, after the drained master turned into a replica: the same command resumes", async () => {
    const f = three("scale-in");
    const planFile = join(work, "scale-in.json");
    expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; from?: { id: string }; to?: { id: string } }[] };
    // One unit at a time: the windows of the three pairs run in plan order, and the last one empties the source.
    const pairs = new Map<string, number>();
    for (const s of plan.steps) if (s.kind === "migrate-slot") pairs.set(`${s.from!.id}>${s.to!.id}`, (pairs.get(`${s.from!.id}>${s.to!.id}`) ?? 0) + 1);
    const windows = [...pairs.values()].reduce((n, slots) => n + Math.ceil(slots / 256), 0);
    let frozen = false;
    const r = await runChild(
      ["apply", planFile, "--auto-approve", "--json-log", "--parallelism", "1"],
      async (e, child) => {
        if (e.type !== "failpoint") return;
        frozen = true;
        // The drained master has no slot left: Redis makes it a replica of the new owner, and its replica follows.
        for (let i = 0; i < 100; i++) {
          const o = await observeCluster({ seeds: [a(0)] });
          const roles = [3, 7].map((k) => o.nodes.find((n) => n.addr === a(k))!.role);
          if (roles.every((x) => x === "replica") && o.disagreements.length === 0) break;
          await sleep(100);
        }
        child.kill("SIGKILL");
      },
      { SHARDFORM_FAILPOINTS: `migrate:after-source-setslot@${windows}` },
    );
    expect(frozen).toBe(true);
    expect(r.signal).toBe("SIGKILL");
    const o = await observeCluster({ seeds: [a(0)] });
    expect(o.nodes.find((n) => n.addr === a(3))!.role).toBe("replica");
    const resumed = await runCli(["apply", planFile, "--auto-approve"]);
    expect(resumed.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done; step\(s\) [\d,-]+ were in progress and are continued/);
    expect(resumed.stderr).toContain("Apply complete");
    expect(resumed.code).toBe(0);
    await fullChecks(a(0), 6, KEYS, f);
  });

  it("a second apply of another spec, planned after the first's meet, with its own lock and state directories, is refused by the in-cluster lease; plan says an apply is in progress", async () => {
    const f = four("scale-out");
    const other = spec("other", [[0, [4]], [1, [5]], [2, [6]], [3, [8]]]);
    let second: { plan: Awaited<ReturnType<typeof runCli>>; apply: Awaited<ReturnType<typeof runCli>> } | null = null;
    const first = await runChild(["apply", f, "--auto-approve", "--json-log", "--max-keys-per-second", "1000"], async (e) => {
      if (second !== null || e.type !== "step-done" || e.kind !== "meet") return;
      second = { plan: { code: -1, stdout: "", stderr: "" }, apply: { code: -1, stdout: "", stderr: "" } };
      const planFile = join(work, "other.json");
      // Planned now, its snapshot already has the first apply's new nodes as members.
      second.plan = await runCli(["plan", other, "--out", planFile]);
      // As from another machine: its own lock and state directories, so only the in-cluster lease can stop it.
      const elsewhere = mkdtempSync(join(tmpdir(), "shardform-elsewhere-"));
      second.apply = await runCli(["apply", planFile, "--auto-approve", "--lock-dir", join(elsewhere, "locks"), "--state-dir", join(elsewhere, "state")]);
    });
    expect(second).not.toBeNull();
    const s = second!;
    expect(s.plan.code).toBe(0);
    expect(s.plan.stdout).toMatch(/Warning: an apply is in progress on this cluster: pid \d+/);
    expect(s.apply.code).toBe(1);
    expect(s.apply.stderr).toMatch(/Error \(LockedError\): another apply is running on this cluster: pid \d+/);
    expect(first.code).toBe(0);
    expect(first.events.at(-1)?.type).toBe("done");
    await fullChecks(a(0), 8, KEYS, f);
  });

  it("--lock-timeout: an apply refused at once by another process's lock waits for it instead, saying whom it waits for", async () => {
    const f = four("lock-wait");
    const lockDir = mkdtempSync(join(tmpdir(), "shardform-lock-wait-"));
    const node = (await observeCluster({ seeds: [a(0)] })).nodes[0]!.id;
    // Another process takes the lock of one node, and holds it for 3 s (its file then names a dead process).
    const lockJs = pathToFileURL(join(process.cwd(), "dist/executor/lock.js")).href;
    const holder = spawn(process.execPath, [
      "--input-type=module",
      "-e",
      `import { acquireLock, nodeLockFile } from ${JSON.stringify(lockJs)}; acquireLock(nodeLockFile(${JSON.stringify(lockDir)}, ${JSON.stringify(node)}), "test holder"); console.log("held"); setTimeout(() => process.exit(0), 3000);`,
    ]);
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once("data", () => resolve());
      holder.once("exit", (code) => reject(new Error(`the lock holder exited ${String(code)}`)));
    });
    const refused = await runCli(["apply", f, "--auto-approve", "--lock-dir", lockDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Error \(LockedError\): another apply holds .*\(test holder\)/);
    const waited = await runCli(["apply", f, "--auto-approve", "--lock-dir", lockDir, "--lock-timeout", "60"]);
    expect(waited.stderr).toMatch(/another apply holds .*\(test holder\): waiting up to 60 s for it \(--lock-timeout\)/);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toContain("No changes");
    const bad = await runCli(["apply", f, "--auto-approve", "--lock-timeout", "soon"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--lock-timeout");
  });

  it("force-unlock ends the locks of an apply that hangs; the interrupted apply then resumes", async () => {
    const f = three("hung");
    const planFile = join(work, "hung.json");
    expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
    let pid = 0;
    // apply freezes at a failpoint, holding its locks: as a hung process would
    const hung = runChild(["apply", planFile, "--auto-approve", "--json-log"], async (e, child) => {
      if (e.type !== "failpoint") return;
      pid = child.pid;
      const refused = await runCli(["apply", planFile, "--auto-approve"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`another apply holds .*pid ${pid}`));
      // It names the command that ends those locks, this plan's too; it does not advise a resume that the lock would refuse.
      expect(refused.stderr).toMatch(new RegExp(`\`shardform force-unlock --seed 127\\.0\\.0\\.1:\\d+ --plan ${planFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\``));
      expect(refused.stderr).not.toMatch(/resume with/i);
      const un = await runCli(["force-unlock", "--seed", a(0), "--plan", planFile, "--auto-approve"]);
      expect(un.code).toBe(0);
      expect(un.stdout).toMatch(new RegExp(`lease of pid ${pid} on .* on \\d+ node\\(s\\)`));
      expect(un.stdout).toMatch(/Ended \d+ lease connection\(s\) and removed \d+ lock file\(s\)\./);
      expect((await runCli(["check", "--seed", a(0)])).stdout).not.toMatch(/Apply in progress/);
      child.kill("SIGKILL"); // the operator makes sure the hung process is gone
    }, { SHARDFORM_FAILPOINTS: "migrate:after-target-setslot" });
    const r = await hung;
    expect(pid, `the hung apply never reached its failpoint; it said:\n${r.stderr}`).toBeGreaterThan(0);
    expect(r.signal).toBe("SIGKILL");
    const resumed = await runCli(["apply", planFile, "--auto-approve"]);
    expect(resumed.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done/);
    expect(resumed.code).toBe(0);
    await fullChecks(a(0), 6, KEYS, f);
    // back to four shards for the next case
    expect((await runCli(["apply", four("four-again"), "--auto-approve"])).code).toBe(0);
  });

  it("an apply whose lease connection was ended while another apply took the lease stops before its next unit (the lease is checked again); the same command resumes it later", async () => {
    const f = three("lost-lease");
    const planFile = join(work, "lost-lease.json");
    expect((await runCli(["plan", f, "--out", planFile])).code).toBe(0);
    let other: NodeClient | null = null;
    let acted = false;
    let ended = 0;
    try {
      const r = await runChild(["apply", planFile, "--auto-approve", "--json-log", "--parallelism", "1", "--max-keys-per-second", "2000"], async (e, child) => {
        if (acted || e.type !== "step-done" || e.kind !== "migrate-slot") return;
        acted = true;
        // Another apply (as from another machine) connects on a(0) while this one's lease is ended there:
        // its lease connection is then the oldest, and this apply's new one comes after it.
        other = await NodeClient.connect(a(0), { access: { clientName: leaseName({ host: "elsewhere", pid: 4242, startedMs: Date.now() }) } });
        const admin = await NodeClient.connect(a(0));
        try {
          const mine = parseClientList(String(await admin.call("client", "list", "type", "normal"))).filter((c) => parseLeaseName(c.name)?.pid === child.pid);
          for (const c of mine) ended += Number(await admin.call("client", "kill", "id", c.id));
        } finally {
          await admin.close();
        }
      });
      expect(ended).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/Error \(LockedError\): another apply took the cluster lease while this one ran: pid 4242 on elsewhere/);
      expect(r.stderr).not.toMatch(/Internal Error|\n {4}at /);
      expect(r.code).toBe(1);
      expect(r.events.filter((e) => e.type === "step-done" && e.kind === "migrate-slot").length).toBeLessThan(
        (JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string }[] }).steps.filter((s) => s.kind === "migrate-slot").length,
      );
    } finally {
      await (other as NodeClient | null)?.close();
    }
    // The other apply is done: the same command resumes.
    const resumed = await runCli(["apply", planFile, "--auto-approve"]);
    expect(resumed.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done/);
    expect(resumed.code).toBe(0);
    await fullChecks(a(0), 6, KEYS, f);
    expect((await runCli(["apply", four("four-after-lease"), "--auto-approve"])).code).toBe(0);
  });

  it("a master that died, was forgotten, and came back with its old state: allowReset re-adds it, and the fresh plan is not stale", async () => {
    // 3 dies; Redis promotes 7.
    sb.kill9(BASE + 3);
    for (let i = 0; i < 200; i++) {
      const o = await observeCluster({ seeds: [a(0)] });
      if (o.nodes.find((n) => n.addr === a(7))?.role === "master" && o.nodes.every((n) => n.reachable || n.flags.includes("fail"))) break;
      await sleep(100);
    }
    // The operator removes it: 7 is the shard's master now.
    const without = spec("without-3", [[0, [4]], [1, [5]], [2, [6]], [7, []]]);
    const gone = await runCli(["apply", without, "--auto-approve"]);
    expect(gone.code).toBe(0);
    await fullChecks(a(0), 7, KEYS, without);
    // 3 comes back with its old nodes.conf: it believes it is still a master of the cluster.
    await sb.restart(BASE + 3);
    await sleep(500);
    const back = spec("back", [[0, [4]], [1, [5]], [2, [6]], [7, [3]]]);
    const refused = await runCli(["plan", back]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/127\.0\.0\.1:21703 was removed from this cluster \(no member lists it\) but still remembers \d+ of its members: shardform never resets a node on its own/);
    const allowed = spec("back-allowed", [[0, [4]], [1, [5]], [2, [6]], [7, [3]]], [`allowReset: ["${a(3)}"]`]);
    const shown = await runCli(["plan", allowed]);
    expect(shown.stdout).toMatch(/-\/\+ reset-node 127\.0\.0\.1:21703 .*\(destructive\)/);
    const applied = await runCli(["apply", allowed, "--auto-approve"]);
    expect(applied.stderr).not.toMatch(/stale/i);
    expect(applied.code).toBe(0);
    await waitConsistent([0, 1, 2, 3, 4, 5, 6, 7].map(a));
    await fullChecks(a(0), 8, KEYS, allowed);
  });

  it("plan and check --spec point at an interrupted apply of the spec's last plan, with the command that resumes it; the plan groups the interrupted moves per pair", async () => {
    const f = spec("interrupted", [[0, [4]], [1, [5]], [2, [6]], [7, [3]]]);
    writeFileSync(f, readFileSync(f, "utf8").replace(`  - master: ${a(0)}\n`, `  - master: ${a(0)}\n    weight: 3\n`));
    const killed = await runChild(["apply", f, "--auto-approve", "--json-log", "--parallelism", "1"], async (e, child) => {
      if (e.type === "failpoint") child.kill("SIGKILL");
    }, { SHARDFORM_FAILPOINTS: "migrate:drain-pass@2" });
    expect(killed.signal).toBe("SIGKILL");
    const lastPlan = join(work, "interrupted.plan.json");
    const p = await runCli(["plan", f]);
    expect(p.code).toBe(0);
    expect(p.stderr).toContain(`Note: an apply of this spec's last plan, ${lastPlan}, was interrupted and can be resumed: \`shardform apply ${lastPlan} --auto-approve\``);
    // check --spec says the same (and the open window is its problem: exit 1).
    const c = await runCli(["check", "--spec", f]);
    expect(c.stderr).toContain(`Note: an apply of this spec's last plan, ${lastPlan}, was interrupted and can be resumed: \`shardform apply ${lastPlan} --auto-approve\``);
    expect(c.code).toBe(1);
    const cj = await runCli(["check", "--spec", f, "--json"]);
    expect(JSON.parse(cj.stdout).interruptedApply).toEqual({ plan: lastPlan, resume: `shardform apply ${lastPlan} --auto-approve` });
    // The open window is one line per pair, not one per slot.
    const interrupted = p.stdout.split("\n").filter((l) => l.includes("# finish the interrupted move"));
    expect(interrupted.length).toBe(1);
    expect(interrupted[0]).toMatch(/migrate-slot \d+-\d+ \(\d+ slots/);
    const resumed = await runCli(["apply", lastPlan, "--auto-approve"]);
    expect(resumed.code).toBe(0);
    expect((await runCli(["plan", f])).stderr).not.toContain("was interrupted");
    await fullChecks(a(0), 8, KEYS, f);
  });
});
