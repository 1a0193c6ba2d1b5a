/**
 * The executor's pure parts: the scheduler (which steps may run), the journal's bookkeeping, the
 * resume check against a live topology, the end-state check, and the lock files (with takeover races).
 */
import { describe, expect, it } from "vitest";
import { fork } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir, hostname } from "node:os";
import { join } from "node:path";
import { planSteps } from "../../src/planner/plan.js";
import { makePlan } from "../../src/plan/make.js";
import type { Plan, Step } from "../../src/plan/types.js";
import type { ObservedCluster } from "../../src/observe/types.js";
import { Scheduler } from "../../src/executor/scheduler.js";
import { JournalFile, newJournal, numbersToRanges, rangesToNumbers, readJournal } from "../../src/executor/journal.js";
import { resumeMismatches } from "../../src/executor/resume.js";
import { endStateDifferences } from "../../src/executor/end-state.js";
import { expandRanges, toRanges } from "../../src/slots.js";
import { acquireLock, defaultLockDir, LockSet, readHolder } from "../../src/executor/lock.js";
import { CheckpointError, LockedError, StepFailedError } from "../../src/errors.js";
import { ExecCtx, DEFAULT_EXEC_OPTIONS } from "../../src/executor/context.js";
import { walk } from "../../src/executor/walk.js";
import type { Unit } from "../../src/executor/scheduler.js";
import { setTimeout as sleep } from "node:timers/promises";
import { simulate } from "../../src/plan/simulate.js";
import { A, failOver, idOf, observed, spec } from "../helpers/build.js";

const three = () =>
  observed(
    [
      { addr: A(7000), slots: ["0-5460"], keys: 6000, replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"], keys: 6000, replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], keys: 6000, replicas: [A(7005)] },
    ],
    [A(7006), A(7007)],
  );
const fourSpec = () =>
  spec([
    { master: A(7000), replicas: [A(7003)] },
    { master: A(7001), replicas: [A(7004)] },
    { master: A(7002), replicas: [A(7005)] },
    { master: A(7006), replicas: [A(7007)] },
  ]);

function plan(o: ObservedCluster, s = fourSpec()): Plan {
  const { steps, notes } = planSteps(s, o, { allowMassRemoval: true });
  return makePlan({ spec: s, specFile: "s.yaml", observed: o, steps, notes, toolVersion: "test" });
}

/** The live topology after some steps: the plan's snapshot with those steps applied. */
function liveAfter(p: Plan, done: Step[]): ObservedCluster {
  const m = simulate(p.observed.snapshot, done);
  const o = observed([]);
  o.outsiders = [];
  for (const n of m.nodes.values()) {
    const slots: [number, number][] = [];
    m.owner.forEach((x, s) => {
      if (x !== n.id) return;
      const last = slots.at(-1);
      if (last && last[1] === s - 1) last[1] = s;
      else slots.push([s, s]);
    });
    o.nodes.push({ id: n.id, addr: n.addr, role: n.role, masterId: n.masterId, flags: [], configEpoch: 1, slots, migrating: [], importing: [], reachable: true, keys: 0 });
  }
  return o;
}

describe("scheduler", () => {
  it("hands out meets together, then the new master's replica, then slot moves as one window per pair, respecting needs", () => {
    const p = plan(three());
    const s = new Scheduler(p.steps, new Set(), 100);
    const first = s.take(10);
    expect(first.map((u) => [u.kind, u.steps.length])).toEqual([["meet", 2]]);
    expect(s.take(10)).toEqual([]); // everything else needs the meets
    s.complete(first[0]!);
    // Keys move into the new master only once its replica is in sync (a replica still in its first sync
    // may be promoted if the master stalls, and the keys moved so far would go with it).
    const rep = s.take(10);
    expect(rep.map((u) => u.kind)).toEqual(["replicate"]);
    const repId = rep[0]!.steps[0]!.id;
    expect(p.steps.filter((st) => st.kind === "migrate-slot").every((st) => st.needs.includes(repId))).toBe(true);
    expect(s.take(10)).toEqual([]);
    s.complete(rep[0]!);
    const next = s.take(10);
    expect(next.map((u) => u.kind).sort()).toEqual(["migrate-slot", "migrate-slot", "migrate-slot"]);
    expect(next.filter((u) => u.kind === "migrate-slot").every((u) => u.steps.length === 100)).toBe(true);
    // a pair's next window waits until the one in flight has drained (see the next case)
    expect(s.take(10)).toEqual([]);
    const w = next.find((u) => u.kind === "migrate-slot")!;
    s.complete(w);
    const again = s.take(10);
    expect(again).toHaveLength(1);
    expect(again[0]!.pair).toBe(w.pair);
    expect(again[0]!.steps[0]!.id).not.toBe(w.steps[0]!.id);
  });

  it("starts a pair's next window once its window in flight has drained, and keeps two in flight at most", () => {
    const p = plan(three());
    const done = new Set(p.steps.slice(0, 3).map((st) => st.id)); // both meets and the replicate
    const s = new Scheduler(p.steps, done, 100);
    const first = s.take(10);
    expect(first).toHaveLength(3);
    const w = first[0]!;
    expect(s.take(10)).toEqual([]); // no window has drained yet
    expect(s.release(w)).toBe(true);
    expect(s.release(w)).toBe(false); // once
    const second = s.take(10);
    expect(second.map((u) => u.pair)).toEqual([w.pair]);
    expect(second[0]!.steps[0]!.id).not.toBe(w.steps[0]!.id);
    // The second drains while the first is still handed over: two in flight, no third.
    s.release(second[0]!);
    expect(s.take(10)).toEqual([]);
    s.complete(w);
    const third = s.take(10);
    expect(third.map((u) => u.pair)).toEqual([w.pair]);
    // A window that ends without a release (it failed, or had nothing to move) frees its pair too.
    s.abandon(third[0]!);
    s.complete(second[0]!);
    expect(s.take(10).map((u) => u.pair)).toEqual([w.pair]);
  });

  it("gives the server's own migration all of a pair's ready slots in one window", () => {
    const p = plan(three());
    for (const st of p.steps) if (st.kind === "migrate-slot") st.atomic = true;
    const done = new Set(p.steps.slice(0, 3).map((st) => st.id));
    const units = new Scheduler(p.steps, done, 100).take(10);
    expect(units).toHaveLength(3);
    expect(units.every((u) => u.kind === "migrate-slot" && u.steps.length > 1000)).toBe(true);
    // ...or --atomic-window slots per migration
    const capped = new Scheduler(p.steps, done, 100, 512).take(10);
    expect(capped.map((u) => u.steps.length)).toEqual([512, 512, 512]);
  });

  it("limits units in flight to the parallelism it is given, and resumes from a done set", () => {
    const p = plan(three());
    const done = new Set(p.steps.slice(0, 3).map((st) => st.id)); // both meets and the replicate
    const s = new Scheduler(p.steps, done, 256);
    expect(s.take(2)).toHaveLength(2);
    expect(s.take(1)).toHaveLength(1);
    expect(s.take(5)).toEqual([]);
  });

  it("a unit that fails is not handed out again in this run, and the walk is then not finished", () => {
    const p = plan(three());
    const s = new Scheduler(p.steps, new Set(), 256);
    const [meets] = s.take(1);
    s.abandon(meets!);
    expect(s.take(10)).toEqual([]);
    expect(s.finished).toBe(false);
  });
});

describe("journal", () => {
  it("keeps the newest state when writes end out of order, also a write on the spot, and leaves no temp file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-journal-"));
    const f = join(dir, "p.checkpoint.json");
    const ids = Array.from({ length: 200 }, (_, k) => `${k + 1}-migrate-slot`);
    const j = new JournalFile(f, newJournal("sha256:x", join(dir, "p.json")), ids);
    // Many writes at once (libuv runs them side by side, so they end in any order), then one on the spot.
    const writes: Promise<void>[] = [];
    for (let k = 0; k < 100; k++) {
      writes.push(j.begin([ids[k]!]));
      if (k > 0) writes.push(j.complete([ids[k - 1]!]));
    }
    await Promise.all(writes);
    await j.idle();
    expect(readJournal(f)).toMatchObject({ done: "1-99", inFlight: "100" });
    j.complete([ids[99]!]);
    const late = j.begin([ids[100]!]); // asked for before the write on the spot: older
    j.save();
    await late;
    await j.idle();
    expect(readJournal(f)).toMatchObject({ done: "1-100", inFlight: "101" });
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("writes the steps done and in flight as numbersToRanges would, whatever the order of the plan's ids", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-journal-"));
    const f = join(dir, "p.checkpoint.json");
    const ids = Array.from({ length: 300 }, (_, k) => `${k + 1}-migrate-slot`).reverse();
    const j = new JournalFile(f, newJournal("sha256:x", join(dir, "p.json")), ids);
    let seed = 7;
    const pick = () => ids.filter(() => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) & 3) === 0);
    const done = pick();
    const flying = pick().filter((id) => !done.includes(id));
    await j.begin(done);
    await j.complete(done);
    await j.begin(flying);
    expect(readJournal(f)).toMatchObject({ done: numbersToRanges(done.map((id) => Number.parseInt(id, 10))), inFlight: numbersToRanges(flying.map((id) => Number.parseInt(id, 10))) });
    expect(numbersToRanges(done.map((id) => Number.parseInt(id, 10)))).toMatch(/,/);
  });

  it("writes step numbers as ranges and reads them back", () => {
    expect(numbersToRanges([5, 1, 2, 3, 9, 10])).toBe("1-3,5,9-10");
    expect(rangesToNumbers("1-3,5,9-10")).toEqual([1, 2, 3, 5, 9, 10]);
    expect(rangesToNumbers("")).toEqual([]);
  });

  it("records steps in flight and done, atomically, and refuses an older format with advice", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-journal-"));
    const f = join(dir, "p.checkpoint.json");
    const ids = ["1-meet", "2-meet", "3-replicate", "4-migrate-slot"];
    const j = new JournalFile(f, newJournal("sha256:x", join(dir, "p.json")), ids);
    await j.begin(["1-meet", "2-meet"]);
    expect(readJournal(f)).toMatchObject({ done: "", inFlight: "1-2" });
    await Promise.all([j.complete(["1-meet", "2-meet"]), j.begin(["4-migrate-slot"])]);
    expect(readJournal(f)).toMatchObject({ done: "1-2", inFlight: "4" });
    // A unit recorded but never started (apply stopped meanwhile) is no longer in flight.
    await j.begin(["3-replicate"]);
    await j.unbegin(["3-replicate"]);
    expect(readJournal(f)).toMatchObject({ done: "1-2", inFlight: "4" });
    const back = new JournalFile(f, readJournal(f)!, ids);
    expect([...back.done]).toEqual(["1-meet", "2-meet"]);
    expect([...back.inFlight]).toEqual(["4-migrate-slot"]);
    writeFileSync(f, JSON.stringify({ kind: "shardform-journal", formatVersion: 1, completed: 3 }));
    expect(() => readJournal(f)).toThrow(/checkpoint of an older shardform \(format 1\).*--restart/s);
  });
});

describe("resume check", () => {
  const p = plan(three());
  const moves = p.steps.filter((s) => s.kind === "migrate-slot");
  const meets = p.steps.filter((s) => s.kind === "meet");

  it("accepts a cluster that matches the done steps, with the steps in flight in either state", () => {
    const done = [...meets, ...moves.slice(0, 300)];
    const inFlight = moves.slice(300, 400);
    const half = liveAfter(p, [...done, ...inFlight.slice(0, 50)]);
    expect(resumeMismatches(p.observed.snapshot, p.steps, new Set(done.map((s) => s.id)), new Set(inFlight.map((s) => s.id)), half)).toEqual([]);
  });

  it("names a slot owned by another node than the done steps give, and a role that changed, saying replica of which node", () => {
    const done = [...meets, ...moves.slice(0, 300)];
    const live = liveAfter(p, meets); // the moves never happened
    const r7003 = live.nodes.find((n) => n.addr === A(7003))!;
    r7003.masterId = idOf(A(7001));
    const bad = resumeMismatches(p.observed.snapshot, p.steps, new Set(done.map((s) => s.id)), new Set(), live);
    expect(bad).toContain(`${A(7003)} should be a replica of ${A(7000)} but is a replica of ${A(7001)}`);
    expect(bad.join("\n")).toMatch(/300 slot\(s\) have another owner than the done steps give \(first: slot 4096, owned by 127\.0\.0\.1:7000, expected 127\.0\.0\.1:7006\)/);
  });

  it("accepts a shard the cluster failed over meanwhile (its replica serves the slots), and still names any other change", () => {
    const done = [...meets, ...moves.slice(0, 300)];
    const live = liveAfter(p, done);
    failOver(live.nodes.find((n) => n.addr === A(7000))!, live.nodes.find((n) => n.addr === A(7003))!);
    expect(resumeMismatches(p.observed.snapshot, p.steps, new Set(done.map((s) => s.id)), new Set(), live)).toEqual([]);
    live.nodes.find((n) => n.addr === A(7004))!.masterId = idOf(A(7003));
    expect(resumeMismatches(p.observed.snapshot, p.steps, new Set(done.map((s) => s.id)), new Set(), live)).toEqual([`${A(7004)} should be a replica of ${A(7001)} but is a replica of ${A(7003)}`]);
  });

  it("leaves the source of an unfinished move free to become a replica (it gave away its last slot), and its replicas to follow", () => {
    // Scale in: 7002 is drained into the others; the last window is in flight when apply dies.
    const four = observed([
      { addr: A(7000), slots: ["0-4095"], replicas: [A(7003)] },
      { addr: A(7001), slots: ["4096-8191"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["8192-12287"], replicas: [A(7005)] },
      { addr: A(7006), slots: ["12288-16383"], replicas: [A(7007)] },
    ]);
    const s3 = spec([
      { master: A(7000), replicas: [A(7003)] },
      { master: A(7001), replicas: [A(7004)] },
      { master: A(7006), replicas: [A(7007)] },
    ]);
    const pin = plan(four, s3);
    const mv = pin.steps.filter((s) => s.kind === "migrate-slot");
    const done = mv.slice(0, mv.length - 10);
    const inFlight = mv.slice(mv.length - 10);
    const live = liveAfter(pin, [...done, ...inFlight]);
    // Redis turned the drained master into a replica of the last slot's new owner, and its replica followed.
    const last = inFlight.at(-1)! as Extract<Step, { kind: "migrate-slot" }>;
    for (const addr of [A(7002), A(7005)]) {
      const n = live.nodes.find((x) => x.addr === addr)!;
      n.role = "replica";
      n.masterId = last.to.id;
    }
    expect(resumeMismatches(pin.observed.snapshot, pin.steps, new Set(done.map((s) => s.id)), new Set(inFlight.map((s) => s.id)), live)).toEqual([]);
    // ...but a master that was not draining must not change role
    const other = live.nodes.find((x) => x.addr === A(7004))!;
    other.masterId = idOf(A(7000));
    expect(resumeMismatches(pin.observed.snapshot, pin.steps, new Set(done.map((s) => s.id)), new Set(inFlight.map((s) => s.id)), live)).toEqual([
      `${A(7004)} should be a replica of ${A(7001)} but is a replica of ${A(7000)}`,
    ]);
  });
});

describe("end state", () => {
  const p = plan(three());

  it("is clean when the cluster is the plan's end state", () => {
    expect(endStateDifferences(p, liveAfter(p, p.steps))).toEqual({ differences: [], warnings: [], failovers: [] });
  });

  it("names every difference: a failover during apply, an extra master, open slots, stray keys", () => {
    const live = liveAfter(p, p.steps);
    const m = live.nodes.find((n) => n.addr === A(7006))!;
    const r = live.nodes.find((n) => n.addr === A(7007))!;
    failOver(m, r);
    live.nodes.find((n) => n.addr === A(7000))!.migrating.push({ slot: 10, peerId: r.id });
    live.nodes.find((n) => n.addr === A(7001))!.strayKeys = [{ slot: 15019, keys: 24 }];
    const { differences, failovers } = endStateDifferences(p, live);
    // A failover inside a shard is a change of roles, told apart (safety rule 4): its slots are served.
    expect(failovers).toEqual([`${A(7006)} is now a replica of ${A(7007)}: the cluster failed that shard over during apply`]);
    expect(differences).toEqual([`slot 10 is still MIGRATING on ${A(7000)}`, `${A(7001)} holds 24 key(s) of slot 15019, which it does not own`]);
  });

  it("a shard a failover split in two masters is named with the failovers, its stale copies with it", () => {
    const live = liveAfter(p, p.steps);
    const m = live.nodes.find((n) => n.addr === A(7006))!;
    const r = live.nodes.find((n) => n.addr === A(7007))!;
    // 7007 took over the slots it knew of; 7006 kept the last one handed to it, whose keys 7007 also holds.
    const all = expandRanges(m.slots);
    const last = all.at(-1)!;
    Object.assign(r, { role: "master", masterId: null, slots: toRanges(all.slice(0, -1)), replId2: "t-repl", strayKeys: [{ slot: last, keys: 7 }] });
    Object.assign(m, { slots: [[last, last]], replId: "t-repl" });
    const { differences, failovers } = endStateDifferences(p, live);
    expect(differences).toEqual([]);
    expect(failovers).toEqual([`${A(7007)} was promoted in place of ${A(7006)} with the slots it knew of, while ${A(7006)} kept slots ${last}: the cluster split that shard during apply (${A(7007)} holds 7 stale copies of their keys, which the next plan deletes)`]);
    // Without the replication ids that show it, the same state is a difference.
    r.replId2 = "other";
    expect(endStateDifferences(p, live).differences.length).toBeGreaterThan(0);
  });

  it("a master that became a replica of a node outside its shard is a difference, not a failover", () => {
    const live = liveAfter(p, p.steps);
    const m = live.nodes.find((n) => n.addr === A(7006))!;
    const other = live.nodes.find((n) => n.addr === A(7000))!;
    Object.assign(m, { role: "replica", masterId: other.id, slots: [] });
    const { differences, failovers } = endStateDifferences(p, live);
    expect(failovers).toEqual([]);
    expect(differences).toEqual(expect.arrayContaining([`${A(7006)} should be a master but is a replica of ${A(7000)}`, expect.stringMatching(/\(4096\) are owned by no master, the plan gives 127\.0\.0\.1:7006$/)]));
  });

  it("a member that is down and that no step acts on is a warning, not a difference", () => {
    const live = liveAfter(p, p.steps);
    const r = live.nodes.find((n) => n.addr === A(7004))!;
    r.reachable = false;
    r.unreachableReason = "connect ECONNREFUSED";
    const { differences, warnings } = endStateDifferences(p, live);
    expect(differences).toEqual([]);
    expect(warnings).toEqual([`${A(7004)} is down (connect ECONNREFUSED); no step of this plan acts on it. Bring it back; \`shardform check\` reports it until then`]);
    // ...but the new master being down is a difference
    live.nodes.find((n) => n.addr === A(7006))!.reachable = false;
    expect(endStateDifferences(p, live).differences.join("\n")).toMatch(/127\.0\.0\.1:7006 is down .*and the plan acted on it/);
  });
});

describe("end state of a plan that removes nodes (safety rule 5)", () => {
  const four = observed([
    { addr: A(7000), slots: ["0-4095"], replicas: [A(7003)] },
    { addr: A(7001), slots: ["4096-8191"], replicas: [A(7004)] },
    { addr: A(7002), slots: ["8192-12287"], replicas: [A(7005)] },
    { addr: A(7006), slots: ["12288-16383"], replicas: [A(7007)] },
  ]);
  const threeSpec = spec([
    { master: A(7000), replicas: [A(7003)] },
    { master: A(7001), replicas: [A(7004)] },
    { master: A(7002), replicas: [A(7005)] },
  ]);

  it("a member down while nodes are forgotten is named in the plan and is a difference at the end, never 'complete'", () => {
    four.nodes.find((n) => n.addr === A(7004))!.reachable = false;
    const { steps, warnings } = planSteps(threeSpec, four, { allowMassRemoval: false });
    const text = `${A(7004)} is down, so it cannot forget ${A(7007)}, ${A(7006)}, which this plan removes: when it comes back, its gossip brings them back into the cluster`;
    expect(warnings.join("\n")).toContain(text);
    const p = makePlan({ spec: threeSpec, specFile: "s.yaml", observed: four, steps, notes: [], toolVersion: "test" });
    const live = liveAfter(p, p.steps);
    live.nodes.find((n) => n.addr === A(7004))!.reachable = false;
    expect(endStateDifferences(p, live).differences.join("\n")).toContain(text);
    live.nodes.find((n) => n.addr === A(7004))!.reachable = true;
    expect(endStateDifferences(p, live).differences).toEqual([]);
  });
});

describe("lock files", () => {
  const dir = mkdtempSync(join(tmpdir(), "shardform-lock-"));

  it("names the holder, is re-entrant within a process, and release removes only its own file", () => {
    const f = join(dir, "a.lock");
    const release = acquireLock(f, "apply one");
    const again = acquireLock(f, "apply one");
    again();
    expect(existsSync(f)).toBe(true);
    release();
    expect(existsSync(f)).toBe(false);
    // a file that another process wrote since is not ours to remove
    const r2 = acquireLock(f, "apply two");
    writeFileSync(f, JSON.stringify({ pid: 1, host: "elsewhere", startedAt: "x", what: "other", token: "t" }));
    r2();
    expect(readHolder(f)!.host).toBe("elsewhere");
    expect(() => acquireLock(f, "apply three")).toThrow(LockedError);
    expect(() => acquireLock(f, "apply three")).toThrow(/another apply holds .*pid 1 on elsewhere.*shardform force-unlock/);
  });

  it("takes over a lock left by a dead process on this host", () => {
    const f = join(dir, "dead.lock");
    writeFileSync(f, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), startedAt: "x", what: "dead", token: "d" }));
    const release = acquireLock(f, "survivor");
    expect(readHolder(f)!.pid).toBe(process.pid);
    release();
  });

  it("of two processes that both find the same dead holder, exactly one takes the lock", async () => {
    for (let round = 0; round < 5; round++) {
      const f = join(dir, `race-${round}.lock`);
      writeFileSync(f, JSON.stringify({ pid: 2 ** 22 + 999, host: hostname(), startedAt: "x", what: "dead", token: "d" }));
      const script = join(dir, "racer.mjs");
      writeFileSync(
        script,
        `import { acquireLock } from ${JSON.stringify(new URL("../../dist/executor/lock.js", import.meta.url).pathname)};
         process.on("message", (m) => {
           if (m === "exit") process.exit(0);
           try { acquireLock(process.argv[2], "racer"); process.send("won"); }
           catch (e) { process.send("lost: " + e.message); }
         });`,
      );
      const racers = [0, 1, 2].map(() => fork(script, [f], { stdio: "ignore" }));
      const results = await Promise.all(
        racers.map(
          (c) =>
            new Promise<string>((resolve) => {
              c.once("message", (m) => resolve(String(m)));
              c.send("go");
            }),
        ),
      );
      // The winner lives until every racer has answered (a racer that started after it died would rightly take its lock over).
      for (const c of racers) c.send("exit");
      expect(results.filter((r) => r === "won")).toHaveLength(1);
      expect(results.filter((r) => r.startsWith("lost: "))).toHaveLength(2);
    }
  });

  it("the default lock directory is the user's own (0700); one another user could write to is refused", () => {
    const saved = { dir: process.env["SHARDFORM_LOCK_DIR"], tmp: process.env["TMPDIR"] };
    const tmp = mkdtempSync(join(tmpdir(), "shardform-tmp-"));
    try {
      delete process.env["SHARDFORM_LOCK_DIR"];
      process.env["TMPDIR"] = tmp;
      const d = defaultLockDir();
      expect(d).toBe(join(tmp, `shardform-locks-${process.getuid!()}`));
      expect(statSync(d).mode & 0o777).toBe(0o700);
      chmodSync(d, 0o777);
      expect(() => defaultLockDir()).toThrow(/the lock directory .* is not this user's own \(owner uid \d+, mode 777\): remove it, or pass --lock-dir DIR/);
    } finally {
      if (saved.dir === undefined) delete process.env["SHARDFORM_LOCK_DIR"];
      else process.env["SHARDFORM_LOCK_DIR"] = saved.dir;
      if (saved.tmp === undefined) delete process.env["TMPDIR"];
      else process.env["TMPDIR"] = saved.tmp;
    }
  });

  it("a set of locks is taken all or none", () => {
    const a = join(dir, "s-a.lock");
    const b = join(dir, "s-b.lock");
    writeFileSync(b, JSON.stringify({ pid: 1, host: "elsewhere", startedAt: "x", what: "other", token: "t" }));
    const set = new LockSet();
    expect(() => set.add([a, b], "both")).toThrow(LockedError);
    expect(existsSync(a)).toBe(false);
    expect(readFileSync(b, "utf8")).toContain("elsewhere");
  });
});

describe("walk, with fake handlers", () => {
  const p = plan(three());
  const ctxFor = (waitTimeoutMs = 60_000): ExecCtx => new ExecCtx({}, { ...DEFAULT_EXEC_OPTIONS, waitTimeoutMs, parallelism: 4 }, () => {});
  const journalIn = (dir: string): JournalFile =>
    new JournalFile(join(dir, "p.checkpoint.json"), newJournal(p.digest, join(dir, "p.json")), p.steps.map((s) => s.id));

  it("a checkpoint that cannot be written stops softly: nothing new starts, the units in flight finish, then it throws CheckpointError", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-walk-"));
    const journal = journalIn(dir);
    journal.save();
    let started = 0;
    let active = 0;
    let startedAfterFailure = 0;
    let broken = false;
    const run = async (): Promise<void> => {
      started++;
      if (broken) startedAfterFailure++;
      active++;
      if (started === 2) {
        rmSync(dir, { recursive: true }); // every write from now on fails
        broken = true;
      }
      await sleep(30);
      active--;
    };
    const err = await walk(p, journal, ctxFor(), run).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/the checkpoint .*p\.checkpoint\.json could not be written \(ENOENT.*\), so apply stopped: nothing new was started and the work in flight was finished/);
    expect(active).toBe(0);
    expect(startedAfterFailure).toBeLessThanOrEqual(2); // only units whose checkpoint write came before the failure
  });

  it("never returns while a unit still runs: a failing unit waits for the others in flight", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-walk-"));
    let active = 0;
    let calls = 0;
    const run = async (): Promise<void> => {
      const me = ++calls;
      active++;
      try {
        if (me === 1) throw new StepFailedError("1-meet", "meet", "refused");
        await sleep(100);
      } finally {
        active--;
      }
    };
    const err = await walk(p, journalIn(dir), ctxFor(), run).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StepFailedError);
    expect(active).toBe(0);
  });

  it("the retry budget counts from a unit's first failure, not from its start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-walk-"));
    const attempts = new Map<string, number>();
    const run = async (u: Unit): Promise<void> => {
      const n = (attempts.get(u.steps[0]!.id) ?? 0) + 1;
      attempts.set(u.steps[0]!.id, n);
      // A first attempt that works longer than --wait-timeout, then fails on a passing state; the second works.
      if (u.kind === "meet" && n === 1) {
        await sleep(400);
        throw new Error("CLUSTERDOWN The cluster is down");
      }
    };
    await walk(p, journalIn(dir), ctxFor(300), run);
    expect([...attempts.values()].some((n) => n === 2)).toBe(true);
  });

  it("a rename (a HARD reset) is in the checkpoint before anything else, and every unit after it names the node by its new id (rule 7)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-walk-"));
    const journal = journalIn(dir);
    journal.save();
    const ctx = ctxFor();
    ctx.onRename = (from, to) => journal.rename(from, to);
    const meet = p.steps.find((st) => st.kind === "meet")!;
    const oldId = (meet as { node: { id: string } }).node.id;
    const newId = "9".repeat(40);
    const seen: string[] = [];
    let renamed = false;
    const run = async (u: Unit, c: ExecCtx): Promise<void> => {
      if (!renamed) {
        renamed = true;
        c.rename(oldId, newId);
        expect(JSON.parse(readFileSync(join(dir, "p.checkpoint.json"), "utf8")).renamed).toEqual({ [oldId]: newId });
        return;
      }
      seen.push(JSON.stringify(u.steps));
    };
    await walk(p, journal, ctx, run);
    expect(seen.join("\n")).not.toContain(oldId);
    expect(seen.some((x) => x.includes(newId))).toBe(true);
  });
});
