/**
 * apply killed with SIGKILL at several moments of a migration, then resumed with the same command:
 * every key is still there with its value, every member agrees, no slot is left open. Where timing
 * cannot place the kill (between the target's and the source's SETSLOT NODE), a failpoint freezes
 * apply there and the test checks the in-between state on the cluster before it kills.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import calculateSlot from "cluster-key-slot";
import { observeCluster } from "../../src/observe/observe.js";
import { populate, slotOwners } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { expectAllKeys, expectHealthy } from "../helpers/verify.js";

// Ports 21300-21307 (bus 31300-31307): this file's own range.
const BASE = 21300;
const KEYS = 100_000;
const HOT = 20_000;
let sb: TestSandbox;
let work: string;
let hotTag = "";
const a = (i: number) => `127.0.0.1:${BASE + i}`;

function spec(name: string, masters: number[]): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`];
  for (const m of masters) lines.push(`  - master: ${a(m)}`, `    replicas: [${a(m + 1)}]`);
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

type Event = { type: string; kind?: string; index?: number; slot?: number; phase?: string; name?: string };

/**
 * Runs apply in a child process and SIGKILLs it when `when` returns true for a progress event
 * (after `beforeKill`, which may look at the cluster while the child is frozen at a failpoint).
 */
function applyAndKill(
  planFile: string,
  when: (e: Event) => boolean,
  extra: string[] = [],
  env: Record<string, string> = {},
  beforeKill: () => Promise<void> = async () => {},
): Promise<{ killed: boolean; events: Event[]; pid: number }> {
  return new Promise((resolve, reject) => {
    const args = ["bin/shardform.js", "apply", planFile, "--auto-approve", "--json-log", "--pipeline", "10", ...extra];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const events: Event[] = [];
    let buf = "";
    let killed = false;
    let err = "";
    child.stderr.on("data", (d) => (err += String(d)));
    child.stdout.on("data", (d) => {
      buf += String(d);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const e = JSON.parse(line) as Event;
        events.push(e);
        if (!killed && when(e)) {
          killed = true;
          beforeKill().then(
            () => child.kill("SIGKILL"),
            (err: unknown) => {
              child.kill("SIGKILL");
              reject(err);
            },
          );
        }
      }
    });
    child.on("error", reject);
    child.on("exit", (code) => (killed || code === 0 ? resolve({ killed, events, pid: child.pid! }) : reject(new Error(`apply exited ${code}: ${err}`))));
  });
}

async function writeHotKeys(): Promise<void> {
  const o = await observeCluster({ seeds: [a(0)] });
  const owner = slotOwners(o)[calculateSlot(`{${hotTag}}`)]!;
  const c = await NodeClient.connect(owner);
  for (let i = 0; i < HOT; i += 1000) {
    await c.pipeline(Array.from({ length: 1000 }, (_, j) => ["set", `{${hotTag}}:${i + j}`, `hot${i + j}`]));
  }
  await c.close();
}

async function expectHotKeys(): Promise<void> {
  const o = await observeCluster({ seeds: [a(0)] });
  const c = await NodeClient.connect(slotOwners(o)[calculateSlot(`{${hotTag}}`)]!, { readOnly: true });
  let bad = 0;
  for (let i = 0; i < HOT; i += 1000) {
    const res = await c.pipeline(Array.from({ length: 1000 }, (_, j) => ["get", `{${hotTag}}:${i + j}`]));
    res.forEach(([e, v], j) => (e || v !== `hot${i + j}` ? bad++ : 0));
  }
  await c.close();
  expect(bad).toBe(0);
}

async function resumeAndVerify(planFile: string, members: number): Promise<{ stderr: string }> {
  const journal = JSON.parse(readFileSync(planFile.replace(/\.json$/, ".checkpoint.json"), "utf8"));
  expect(journal.finished).toBe(false);
  const r = await runCli(["apply", planFile, "--auto-approve"]);
  expect(r.stderr).toMatch(/resuming: \d+ of \d+ step\(s\) done/);
  expect(r.stderr).toContain("Apply complete");
  expect(r.code).toBe(0);
  await expectHealthy(a(0), members);
  await expectAllKeys(a(0), KEYS);
  await expectHotKeys();
  return r;
}

/** Runs `apply PLAN --json-log ...flags` as a child and sends it `signal` once its output first contains `when`. */
async function applyUntilSignal(planFile: string, flags: string[], when: string, signal: NodeJS.Signals): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, ["bin/shardform.js", "apply", planFile, "--json-log", ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  let sent = false;
  child.stderr.on("data", (d) => (err += String(d)));
  child.stdout.on("data", (d) => {
    if (!sent && String(d).includes(when)) {
      sent = true;
      child.kill(signal);
    }
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  return { code, err };
}

async function planTo(name: string, masters: number[]): Promise<string> {
  const planFile = join(work, `${name}.json`);
  const r = await runCli(["plan", spec(name, masters), "--out", planFile]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return planFile;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 8);
  work = mkdtempSync(join(tmpdir(), "shardform-kill-"));
  const create = await planTo("create", [0, 2, 4]);
  expect((await runCli(["apply", create])).code).toBe(0);
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
  // A slot with 20,000 keys that the scale-out moves to the 4th master (slots 4096-5460 go to it).
  for (let n = 0; ; n++) {
    const slot = calculateSlot(`{hot${n}}`);
    if (slot >= 4200 && slot <= 5400) {
      hotTag = `hot${n}`;
      break;
    }
  }
  await writeHotKeys();
});
afterAll(async () => {
  await sb?.stop();
});

describe("apply survives SIGKILL at any moment and resumes", { timeout: 240_000 }, () => {
  it("killed early in the migration; a second apply meanwhile is refused by the lock", async () => {
    const planFile = await planTo("out1", [0, 2, 4, 6]);
    let lockMessage = "";
    const run = applyAndKill(planFile, (e) => {
      if (e.type === "step-done" && e.kind === "migrate-slot" && lockMessage === "") {
        lockMessage = "pending";
        void runCli(["apply", planFile, "--auto-approve"]).then((r) => (lockMessage = r.stderr));
      }
      return e.type === "step-done" && e.kind === "migrate-slot" && (e.index ?? 0) > 50;
    });
    const { killed, pid } = await run;
    expect(killed).toBe(true);
    expect(lockMessage).toMatch(new RegExp(`another apply holds .*pid ${pid}`));
    await resumeAndVerify(planFile, 8);
  });

  it("killed in the middle of a slot with 20,000 keys (keys on both sides)", async () => {
    const back = await planTo("in1", [0, 2, 4]);
    const b = await runCli(["apply", back]);
    expect(b.stderr).toContain("Apply complete");
    expect(b.code).toBe(0);
    const planFile = await planTo("out2", [0, 2, 4, 6]);
    const hotSlot = calculateSlot(`{${hotTag}}`);
    let batches = 0;
    const { killed } = await applyAndKill(planFile, (e) => e.type === "keys-moved" && e.slot === hotSlot && ++batches === 300);
    expect(killed).toBe(true);
    // the slot is open, with keys on both sides
    const o = await observeCluster({ seeds: [a(0)] });
    expect(o.nodes.some((n) => n.migrating.some((m) => m.slot === hotSlot))).toBe(true);
    await resumeAndVerify(planFile, 8);
  });

  it("killed between the target's and the source's SETSLOT NODE (frozen there by a failpoint)", async () => {
    const back = await planTo("in2", [0, 2, 4]);
    const b = await runCli(["apply", back]);
    expect(b.stderr).toContain("Apply complete");
    expect(b.code).toBe(0);
    const planFile = await planTo("out3", [0, 2, 4, 6]);
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; slot?: number; from?: { id: string; addr: string }; to?: { id: string; addr: string } }[] };
    let inBetween = 0;
    const { killed, events } = await applyAndKill(
      planFile,
      (e) => e.type === "failpoint",
      ["--parallelism", "1"],
      { SHARDFORM_FAILPOINTS: "migrate:after-target-setslot" },
      async () => {
        // The target has taken the window's slots; the source has not been told yet.
        const move = plan.steps.find((s) => s.kind === "migrate-slot")!;
        const dst = await NodeClient.connect(move.to!.addr);
        const src = await NodeClient.connect(move.from!.addr);
        const owns = (nodes: string, slot: number) =>
          nodes.split("\n").find((l) => l.includes("myself"))!.split(" ").slice(8).some((r) => {
            const [lo, hi] = r.split("-").map(Number) as [number, number | undefined];
            return !r.startsWith("[") && slot >= lo && slot <= (hi ?? lo);
          });
        const dstNodes = String(await dst.call("cluster", "nodes"));
        const srcNodes = String(await src.call("cluster", "nodes"));
        for (const s of plan.steps.filter((x) => x.kind === "migrate-slot" && x.from!.id === move.from!.id).slice(0, 256)) {
          const srcStill = owns(srcNodes, s.slot!) || srcNodes.includes(`[${s.slot}->-${move.to!.id}]`);
          if (owns(dstNodes, s.slot!) && srcStill) inBetween++;
        }
        await dst.close();
        await src.close();
      },
    );
    expect(killed).toBe(true);
    expect(events.some((e) => e.type === "failpoint" && e.name === "migrate:after-target-setslot")).toBe(true);
    expect(inBetween).toBe(256);
    await resumeAndVerify(planFile, 8);
  });

  it("killed while three source->target pairs move in parallel, with later windows done ahead of earlier ones", async () => {
    const back = await planTo("in4", [0, 2, 4]);
    expect((await runCli(["apply", back])).code).toBe(0);
    const planFile = await planTo("out4", [0, 2, 4, 6]);
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; from?: { id: string } }[] };
    const firstMove = plan.steps.findIndex((s) => s.kind === "migrate-slot");
    const firstLaneEnd = plan.steps.findIndex((s, i) => i > firstMove && s.kind === "migrate-slot" && s.from!.id !== plan.steps[firstMove]!.from!.id);
    // Kill as soon as a window of the second lane is done: the first lane is then still under way.
    const { killed } = await applyAndKill(planFile, (e) => e.type === "step-done" && e.kind === "migrate-slot" && (e.index ?? 0) >= firstLaneEnd, ["--window", "32", "--parallelism", "3"]);
    expect(killed).toBe(true);
    // The journal is a set: steps of the second lane are done while earlier steps of the first are not.
    const journal = JSON.parse(readFileSync(planFile.replace(/\.json$/, ".checkpoint.json"), "utf8")) as { done: string; inFlight: string };
    const done = journal.done.split(",").flatMap((r) => {
      const [lo, hi] = r.split("-").map(Number) as [number, number | undefined];
      return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, k) => lo + k);
    });
    const firstMissing = Array.from({ length: plan.steps.length }, (_, k) => k + 1).find((n) => !done.includes(n))!;
    expect(Math.max(...done)).toBeGreaterThan(firstMissing);
    expect(journal.inFlight).not.toBe("");
    const r = await resumeAndVerify(planFile, 8);
    expect(r.stderr).toMatch(/step\(s\) [\d,-]+ were in progress and are continued/);
  });

  it("a first Ctrl-C finishes the slots in flight (no slot stays open), exits 130, and prints the command that resumes", async () => {
    const planFile = await planTo("in3", [0, 2, 4]);
    const { code, err } = await applyUntilSignal(planFile, [], '"kind":"migrate-slot"', "SIGINT");
    expect(code).toBe(130);
    expect(err).toMatch(/finishing the steps in flight, so that no slot stays open/);
    expect(err).toMatch(/Resume with: shardform apply .*in3\.json --auto-approve/);
    const o = await observeCluster({ seeds: [a(0)] });
    expect(o.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
    // Slot moves in flight were finished: none is left in doubt (other steps may be).
    const journal = JSON.parse(readFileSync(planFile.replace(/\.json$/, ".checkpoint.json"), "utf8")) as { done: string; inFlight: string };
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { id: string; kind: string }[] };
    expect(journal.done).not.toBe("");
    const inFlight = journal.inFlight.split(",").filter(Boolean).flatMap((r) => {
      const [lo, hi] = r.split("-").map(Number) as [number, number | undefined];
      return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, k) => lo + k);
    });
    expect(inFlight.map((n) => plan.steps[n - 1]!.kind).filter((k) => k === "migrate-slot")).toEqual([]);
    await resumeAndVerify(planFile, 6);
  });

  it("SIGTERM stops like a first Ctrl-C (no slot stays open), exits 143, and the resume command repeats the flags of the run", async () => {
    const planFile = await planTo("out5", [0, 2, 4, 6]);
    const flags = ["--max-keys-per-second", "20000", "--parallelism", "2", "--window", "64"];
    const { code, err } = await applyUntilSignal(planFile, flags, '"type":"keys-moved"', "SIGTERM");
    expect(err).toMatch(/SIGTERM received\. Stopping: finishing the steps in flight, so that no slot stays open/);
    expect(err).toContain(`Resume with: shardform apply ${planFile} --auto-approve ${flags.join(" ")}`);
    expect(code).toBe(143);
    const o = await observeCluster({ seeds: [a(0)] });
    expect(o.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
    await resumeAndVerify(planFile, 8);
  });

  it("SIGHUP (a closed terminal) stops the same way and exits 129; the resume removes the drained shard", async () => {
    const planFile = await planTo("in6", [0, 2, 4]);
    const { code, err } = await applyUntilSignal(planFile, ["--max-keys-per-second", "20000"], '"type":"keys-moved"', "SIGHUP");
    expect(err).toMatch(/SIGHUP received\. Stopping: finishing the steps in flight, so that no slot stays open/);
    expect(err).toContain(`Resume with: shardform apply ${planFile} --auto-approve --max-keys-per-second 20000`);
    expect(code).toBe(129);
    const o = await observeCluster({ seeds: [a(0)] });
    expect(o.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
    await resumeAndVerify(planFile, 6);
  });
});
