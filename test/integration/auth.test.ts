/**
 * A password-protected cluster: apply creates and scales it (MIGRATE carries AUTH), and the password
 * never appears in the plan, the checkpoint or the progress log. A wrong password is a clear error.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { observeCluster } from "../../src/observe/observe.js";
import { populate, verifyTestKeys, slotOwners, testKeySlot } from "../../src/testdata/populate.js";
import { BulkWriter, resp } from "../../src/redis/bulk.js";
import { NodeClient } from "../../src/redis/connect.js";
import { AuthFailedError, ClusterStateError } from "../../src/errors.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";

// Ports 21400-21403 and 21410 (bus 31400-31403, 31410): this file's own range.
const BASE = 21400;
const SECRET = "s3cret-Pa55-word";
const KEYS = 20_000;
let sb: TestSandbox;
let work: string;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
const access = { credentials: { password: SECRET } };

function spec(name: string, masters: number[]): string {
  const f = join(work, `${name}.yaml`);
  writeFileSync(f, [`cluster:`, `  seeds: ["${a(0)}"]`, `  auth: { passwordEnv: SF_TEST_PASSWORD }`, `shards:`, ...masters.map((m) => `  - master: ${a(m)}`)].join("\n") + "\n");
  return f;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 4, SECRET);
  work = mkdtempSync(join(tmpdir(), "shardform-auth-"));
});
afterAll(async () => {
  await sb?.stop();
});

describe("a password-protected cluster", () => {
  it("is created and scaled out by apply, with the password only from the environment", async () => {
    const env = { SF_TEST_PASSWORD: SECRET };
    const create = await runCli(["apply", spec("create", [0, 1, 2]), "--auto-approve", "--json-log"], env);
    expect(create.code).toBe(0);
    await populate(await observeCluster({ seeds: [a(0)], access }), { keys: KEYS, access });
    const planFile = join(work, "out.json");
    expect((await runCli(["plan", spec("out", [0, 1, 2, 3]), "--out", planFile], env)).code).toBe(0);
    const r = await runCli(["apply", planFile, "--json-log", "--password-env", "SF_TEST_PASSWORD", "--max-latency-ms", "10"], env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // the latency probes log in too: their PINGs were answered
    const done = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { type: string; latency?: { budgetMs: number; probes: number } };
    expect(done.type).toBe("done");
    expect(done.latency?.budgetMs).toBe(10);
    expect(done.latency?.probes).toBeGreaterThan(0);
    const v = await verifyTestKeys(await observeCluster({ seeds: [a(0)], access }), { keys: KEYS, access });
    expect([v.missing.length, v.wrong.length]).toEqual([0, 0]);
    // check, snapshot and force-unlock take seeds and auth from the spec, with no flag
    const chk = await runCli(["check", "--spec", spec("out", [0, 1, 2, 3])], env);
    expect(chk.stdout).toContain("4 masters");
    expect(chk.code).toBe(0);
    expect((await runCli(["snapshot", "--spec", spec("out", [0, 1, 2, 3])], env)).code).toBe(0);
    expect((await runCli(["force-unlock", "--spec", spec("out", [0, 1, 2, 3]), "--auto-approve"], env)).code).toBe(0);
    // the secret is nowhere in what shardform wrote or printed
    for (const f of readdirSync(work)) expect(readFileSync(join(work, f), "utf8")).not.toContain(SECRET);
    expect(create.stdout + create.stderr + r.stdout + r.stderr).not.toContain(SECRET);
  });

  it("says what to do when the password is wrong or missing, and exits 1", async () => {
    const wrong = await runCli(["check", "--seed", a(0), "--password-env", "SF_WRONG"], { SF_WRONG: "nope" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^Error \(AuthFailedError\): 127\.0\.0\.1:21400 refused the credentials: WRONGPASS.*--password-env/s);
    expect(wrong.stderr).not.toContain("nope");
    const none = await runCli(["check", "--seed", a(0)], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/127\.0\.0\.1:21400 needs a password and none was given\. Give it with --password-env VAR/);
    const unset = await runCli(["plan", spec("x", [0, 1, 2, 3])], {});
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(/environment variable SF_TEST_PASSWORD \(auth.passwordEnv in .*x\.yaml\) is not set: export SF_TEST_PASSWORD=/);
  });

  it("bulk writes (populate) refuse a wrong password and stop at the first error reply", async () => {
    await expect(BulkWriter.open(a(0), { credentials: { password: "nope" } })).rejects.toThrow(AuthFailedError);
    // A key whose slot a(0) does not own: the node answers -MOVED, and the writer says so.
    const owners = slotOwners(await observeCluster({ seeds: [a(0)], access }));
    const slotOf = testKeySlot("elsewhere:");
    let i = 0;
    while (owners[slotOf(i)] === a(0)) i++;
    const w = await BulkWriter.open(a(0), access);
    await w.send(resp(["SET", `elsewhere:${String(i).padStart(10, "0")}`, "x"]), 1);
    await expect(w.finish()).rejects.toThrow(ClusterStateError);
    await expect(w.finish()).rejects.toThrow(/writing to 127\.0\.0\.1:21400 failed: MOVED/);
    w.destroy();
  });

  it("a saved plan records where the password comes from (a file beside the spec), and apply uses it", async () => {
    writeFileSync(join(work, "redis.pass"), SECRET + "\n");
    const f = join(work, "from-file.yaml");
    writeFileSync(f, [`cluster:`, `  seeds: ["${a(0)}"]`, `  auth: { passwordFile: redis.pass }`, `shards:`, ...[0, 1, 2].map((m) => `  - master: ${a(m)}`)].join("\n") + "\n");
    const planFile = join(work, "from-file.json");
    const p = await runCli(["plan", f, "--out", planFile], {});
    expect(p.code).toBe(0);
    const plan = JSON.parse(readFileSync(planFile, "utf8"));
    expect(plan.access).toEqual({ passwordFile: join(work, "redis.pass") });
    expect(readFileSync(planFile, "utf8")).not.toContain(SECRET);
    // apply of the saved plan needs no flag: the plan says where the password is
    const r = await runCli(["apply", planFile], {});
    expect(r.stderr).toContain("Apply complete");
    expect(r.code).toBe(0);
  });

  it("an auth error names the source it used; a second source that is set is named in a warning", async () => {
    writeFileSync(join(work, "wrong.pass"), "not-the-password\n");
    const f = join(work, "wrong-file.yaml");
    writeFileSync(f, [`cluster:`, `  seeds: ["${a(0)}"]`, `  auth: { passwordFile: wrong.pass }`, `shards:`, ...[0, 1, 2].map((m) => `  - master: ${a(m)}`)].join("\n") + "\n");
    const r = await runCli(["plan", f], { REDISCLI_AUTH: SECRET });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Warning: a password is also set in environment variable REDISCLI_AUTH; it is ignored \(order: --password-env, the spec or plan, REDISCLI_AUTH\)/);
    expect(r.stderr).toMatch(new RegExp(`refused the credentials: WRONGPASS.*shardform sent the password \\(from file ${join(work, "wrong.pass").replace(/[.]/g, "\\.")} \\(auth\\.passwordFile in .*wrong-file\\.yaml\\)\\)`));
    expect(r.stderr + r.stdout).not.toContain(SECRET);
  });

  it("import of a password-protected cluster writes an auth section naming the variable", async () => {
    const imp = await runCli(["import", "--seed", a(0), "--password-env", "SF_TEST_PASSWORD"], { SF_TEST_PASSWORD: SECRET });
    expect(imp.code).toBe(0);
    expect(imp.stdout).toContain("auth:\n    passwordEnv: SF_TEST_PASSWORD");
    expect(imp.stdout).not.toContain(SECRET);
    // import --spec takes the seeds and the auth from that spec: the same spec again, without --seed or --password-env.
    const f = join(work, "imported.yaml");
    writeFileSync(f, imp.stdout);
    const again = await runCli(["import", "--spec", f], { SF_TEST_PASSWORD: SECRET });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(imp.stdout);
  });
});

describe("sandbox passwords", () => {
  it("a password with quotes, backslashes, spaces and non-ASCII is written escaped to a server.conf only its owner can read, and the node accepts exactly it", async () => {
    const tricky = `a"b\\c d'e\té€`;
    const one = await startNodes(BASE + 10, 1, tricky); // port 21410 (bus 31410)
    try {
      const conf = join(one.dir, String(BASE + 10), "server.conf");
      expect(statSync(conf).mode & 0o777).toBe(0o600);
      const c = await NodeClient.connect(a(10), { access: { credentials: { password: tricky } } });
      expect(await c.call("ping")).toBe("PONG");
      await c.close();
      await expect(NodeClient.connect(a(10), { access: { credentials: { password: "a" } } })).rejects.toBeInstanceOf(AuthFailedError);
    } finally {
      await one.stop();
    }
  });
});
