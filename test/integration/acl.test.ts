/**
 * ACL users with the rules the README documents: a plan-only user can plan, check, import and
 * snapshot, and is refused by apply before any change, with the missing permissions named; an apply
 * user creates a cluster from bare nodes and scales it out (MIGRATE logs in to targets as that user).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { observeCluster } from "../../src/observe/observe.js";
import { fingerprint } from "../../src/observe/fingerprint.js";
import { populate } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { fullChecks } from "../helpers/verify.js";

// Ports 22400-22407 (bus 32400-32407): this file's own range.
const BASE = 22400;
const KEYS = 20_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
const env = { SF_PLAN_PASS: "plan-Pa55", SF_APPLY_PASS: "apply-Pa55" };

/** The README's rules ("ACL users"), read from it so that the documentation is what is tested. */
function readmeRules(user: "plan" | "apply"): string[] {
  const readme = readFileSync("README.md", "utf8");
  const m = new RegExp(`ACL SETUSER shardform-${user} on >\\S+ (.+)`).exec(readme);
  if (!m) throw new Error(`README has no ACL SETUSER line for shardform-${user}`);
  return m[1]!.trim().split(/\s+/);
}

function spec(name: string, shards: [number, number[]][], user: "plan" | "apply"): string {
  const f = join(work, `${name}.yaml`);
  const lines = [`cluster:`, `  seeds: ["${a(0)}"]`, `  auth: { user: shardform-${user}, passwordEnv: ${user === "plan" ? "SF_PLAN_PASS" : "SF_APPLY_PASS"} }`, `shards:`];
  for (const [m, reps] of shards) lines.push(`  - master: ${a(m)}`, ...(reps.length ? [`    replicas: [${reps.map(a).join(", ")}]`] : []));
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 8);
  work = mkdtempSync(join(tmpdir(), "shardform-acl-"));
  for (let i = 0; i < 8; i++) {
    const c = await NodeClient.connect(a(i));
    await c.call("acl", "setuser", "shardform-plan", "on", `>${env.SF_PLAN_PASS}`, ...readmeRules("plan"));
    await c.call("acl", "setuser", "shardform-apply", "on", `>${env.SF_APPLY_PASS}`, ...readmeRules("apply"));
    // The plan user's rules, plus the right to ask the server about permissions (ACL DRYRUN).
    await c.call("acl", "setuser", "shardform-plan-dry", "on", `>${env.SF_PLAN_PASS}`, ...readmeRules("plan"), "+acl|dryrun");
    await c.close();
  }
});
afterAll(async () => {
  await sb?.stop();
});

describe("ACL users", { timeout: 120_000 }, () => {
  it("the apply user creates a cluster from bare nodes", async () => {
    const r = await runCli(["apply", spec("create", [[0, [3]], [1, [4]], [2, [5]]], "apply"), "--auto-approve"], env);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    await populate(await observeCluster({ seeds: [a(0)] }), { keys: KEYS });
  });

  it("the plan user can plan, check, import and snapshot", async () => {
    const f = spec("out-plan", [[0, [3]], [1, [4]], [2, [5]], [6, [7]]], "plan");
    const p = await runCli(["plan", f, "--out", join(work, "out.json")], env);
    expect(p.stderr).toBe("");
    expect(p.code).toBe(0);
    const creds = ["--user", "shardform-plan", "--password-env", "SF_PLAN_PASS"];
    expect((await runCli(["check", "--seed", a(0), ...creds], env)).code).toBe(0);
    const imp = await runCli(["import", "--seed", a(0), ...creds], env);
    expect(imp.code).toBe(0);
    expect(imp.stdout).toContain("auth:\n    user: shardform-plan\n    passwordEnv: SF_PLAN_PASS");
    expect((await runCli(["snapshot", "--seed", a(0), ...creds, "--out", join(work, "snap.json")], env)).code).toBe(0);
    expect((await runCli(["populate", "--seed", a(0), "--keys", String(KEYS), "--verify", ...creds], env)).code).toBe(0);
  });

  it("the plan user is refused by apply before any change, naming the missing permissions", async () => {
    const before = fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(6), a(7)] }));
    const r = await runCli(["apply", join(work, "out.json"), "--auto-approve"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error \(PermissionError\): ACL user "shardform-plan" lacks permissions this plan needs: client\|id \(on .*\); cluster\|meet \(on .*cluster\|setslot .*migrate .*Nothing was changed\. Run apply as a user that may change the cluster .*not a read-only one\. Only if "shardform-plan" is meant to apply, grant them on every node: ACL SETUSER shardform-plan \+client\|id \+cluster\|meet/);
    expect(fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(6), a(7)] }))).toBe(before);
  });

  it("a user that may run ACL DRYRUN is probed with it: refused the same way, and no probe command reaches the nodes (nothing in ACL LOG)", async () => {
    for (let i = 0; i < 8; i++) {
      const c = await NodeClient.connect(a(i));
      await c.call("acl", "log", "reset");
      await c.close();
    }
    const r = await runCli(["apply", join(work, "out.json"), "--auto-approve", "--user", "shardform-plan-dry", "--password-env", "SF_PLAN_PASS"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error \(PermissionError\): ACL user "shardform-plan-dry" lacks permissions this plan needs: client\|id \(on .*\); cluster\|meet \(on .*cluster\|setslot .*migrate .*Nothing was changed/);
    for (let i = 0; i < 8; i++) {
      const c = await NodeClient.connect(a(i));
      const log = (await c.call("acl", "log")) as unknown[][];
      await c.close();
      expect(log.filter((e) => JSON.stringify(e).includes("shardform-plan-dry"))).toEqual([]);
    }
  });

  it("the apply user applies the plan (MIGRATE logs in to the targets as that user); the debug log shows every command with the passwords redacted", async () => {
    const r = await runCli(["apply", join(work, "out.json"), "--auto-approve", "--user", "shardform-apply", "--password-env", "SF_APPLY_PASS", "--debug"], env);
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^debug \S+ 127\.0\.0\.1:\d+ connect as user shardform-apply with a password/m);
    expect(r.stderr).toMatch(/^debug \S+ 127\.0\.0\.1:\d+ pipeline of \d+: CLUSTER setslot \d+ importing [0-9a-f]{40}; .* \([\d.]+ ms\)$/im);
    expect(r.stderr).toMatch(/^debug \S+ 127\.0\.0\.1:\d+ CLUSTER nodes \([\d.]+ ms\)$/im);
    expect(r.stderr).toMatch(/MIGRATE 127\.0\.0\.1 \d+ "" 0 \d+ auth2 shardform-apply <redacted> keys /i);
    for (const secret of Object.values(env)) expect(r.stdout + r.stderr).not.toContain(secret);
    await fullChecks(a(0), 8, KEYS, spec("out-apply", [[0, [3]], [1, [4]], [2, [5]], [6, [7]]], "apply"), { env });
  });
});
