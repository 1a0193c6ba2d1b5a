/**
 * Bad inputs and misuses, as a new user makes them: each gets its exit code and a message that says
 * what to do, and changes nothing on the cluster (its fingerprint is the same before and after).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { observeCluster } from "../../src/observe/observe.js";
import { fingerprint } from "../../src/observe/fingerprint.js";
import { populate } from "../../src/testdata/populate.js";
import { createCluster, startNodes, type TestSandbox } from "../helpers/cluster.js";
import { runCli } from "../helpers/cli.js";
import { sandboxUp, sandboxDown, sandboxRestart } from "../../src/sandbox/local.js";

// Ports 22600-22608 (bus 32600-32608): this file's own range; 22610-22611 for a sandbox of its own.
const BASE = 22600;
let sb: TestSandbox;
let work: string;
let http: Server;
let httpPort = 0;
const a = (i: number) => `127.0.0.1:${BASE + i}`;

async function unchanged<T>(f: () => Promise<T>): Promise<T> {
  const before = fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(6)] }));
  const r = await f();
  expect(fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(6)] }))).toBe(before);
  return r;
}

function spec(name: string, body: string[]): string {
  const f = join(work, `${name}.yaml`);
  writeFileSync(f, body.join("\n") + "\n");
  return f;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 9);
  work = mkdtempSync(join(tmpdir(), "shardform-cli-"));
  await createCluster([a(0), a(1), a(2)], 0);
  await createCluster([a(3), a(4), a(5)], 0); // another cluster
  await populate(await observeCluster({ seeds: [a(0)] }), { keys: 5000 });
  http = createServer((_req, res) => res.end("not redis\n"));
  await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
  httpPort = (http.address() as { port: number }).port;
});
afterAll(async () => {
  http?.close();
  await sb?.stop();
});

describe("a typo must not drain a cluster", () => {
  const typo = () => spec("typo", [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`, `  - master: ${a(6)}`]);

  it("a spec that lists one new master and none of the old ones is refused by apply --auto-approve; nothing changes", async () => {
    const r = await unchanged(() => runCli(["apply", typo(), "--auto-approve"]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/this plan removes 3 of the 3 masters that own slots \(127\.0\.0\.1:2260[0-2], .*\), moving all their slots elsewhere\. If the spec is right .*plan again with --allow-mass-removal/);
  });

  it("with --allow-mass-removal the plan records the permission and says so in its summary and Markdown banner", async () => {
    const planFile = join(work, "typo.json");
    const r = await unchanged(() => runCli(["plan", typo(), "--allow-mass-removal", "--out", planFile]));
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(planFile, "utf8")).allow).toEqual({ massRemoval: true });
    expect(r.stdout).toMatch(/This plan was made with --allow-mass-removal: it may remove half or more of the masters that own slots \(it removes 3\)\./);
    const md = await runCli(["show", planFile, "--markdown"]);
    expect(md.stdout).toMatch(/> \[!WARNING\][\s\S]*> \*\*Permission:\*\* This plan was made with --allow-mass-removal/);
  });

  it("a node under cluster.protect is never removed", async () => {
    const f = spec("protected", [`cluster:`, `  seeds: ["${a(0)}"]`, `  protect: ["${a(2)}"]`, `shards:`, `  - master: ${a(0)}`, `  - master: ${a(1)}`]);
    const r = await unchanged(() => runCli(["plan", f]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the plan would remove 127\.0\.0\.1:22602, which cluster\.protect protects/);
  });
});

describe("errors that point the right way", () => {
  it("a seed that is not Redis (an HTTP port) is named as such", async () => {
    const r = await runCli(["check", "--seed", `127.0.0.1:${httpPort}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not speak the Redis protocol.*Check the port: it should be the node's client port/);
  });

  it("a server whose answer is lost because it hangs up at once (as Python's http.server may) is still named as not Redis", async () => {
    // ioredis's connection is reset before its answer is read (the client sees only EPIPE or a closed
    // connection); the inline PING that shardform then sends gets the server's HTML.
    const server = createNetServer((sock) =>
      sock.once("data", (d: Buffer) => {
        if (d[0] === 0x2a /* "*": RESP */) sock.resetAndDestroy();
        else sock.end("<!DOCTYPE HTML>\n<html><body>Bad request</body></html>\n");
      }),
    );
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await runCli(["check", "--seed", `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/does not speak the Redis protocol \(Protocol error: it answered "<!DOCTYPE HTML>"\)\. Check the port/);
    } finally {
      server.close();
    }
  });

  it("seeds of another cluster than the spec's nodes are named as such, once", async () => {
    const f = spec("other-seeds", [`cluster:`, `  seeds: ["${a(3)}"]`, `shards:`, `  - master: ${a(0)}`, `  - master: ${a(1)}`, `  - master: ${a(2)}`]);
    const r = await unchanged(() => runCli(["plan", f]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the seeds reach a cluster of 3 node\(s\) \(127\.0\.0\.1:22603, .*\) of which none is in the spec, while the spec's nodes belong to another cluster: check cluster\.seeds \(or --seed\)/);
    expect(r.stderr.match(/^ {2}- /gm)).toHaveLength(1);
  });

  it("a file that is not a plan gets advice that does not overwrite it", async () => {
    const notPlan = join(work, "plan.json");
    writeFileSync(notPlan, JSON.stringify({ hello: "world" }));
    const r = await runCli(["show", notPlan]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/plan\.json is not a usable shardform plan: it has no "kind": "shardform-plan"; make one with `shardform plan SPEC --out new-plan\.json`/);
    expect(readFileSync(notPlan, "utf8")).toContain("hello");
  });

  it("check --json prints JSON on stdout, error included, when the seed cannot be reached or is missing", async () => {
    const r = await runCli(["check", "--seed", "127.0.0.1:22609", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ healthy: false, error: { kind: "NodeUnreachableError", message: expect.stringMatching(/cannot reach 127\.0\.0\.1:22609/) } });
    const m = await runCli(["check", "--json"]);
    expect(JSON.parse(m.stdout)).toMatchObject({ healthy: false, error: { kind: "UsageError" } });
  });

  it.each([
    [["check"], /--seed HOST:PORT is required/],
    [["apply", "x.json", "--window", "-1"], /--window must be a whole number >= 1, got "-1"/],
    [["populate", "--seed", "127.0.0.1:22600", "--keys", "-3"], /--keys must be a whole number from 1 to \d+, got "-3"/],
    [["import", "--seed", "127.0.0.1:22600", "--threshold", "500"], /--threshold must be a percentage from 0 to 100, got "500"/],
    [["plan", "x.yaml", "--seed", "::1:22600"], /an IPv6 address goes in brackets: \[::1\]:22600/],
  ])("usage error: %j", async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Error \(UsageError\): /);
    expect(r.stderr).toMatch(message);
  });

  it("sandbox --help lists the sandbox commands; --help has no ANSI codes when piped", () => {
    const h = spawnSync(process.execPath, ["bin/shardform.js", "sandbox", "--help"], { encoding: "utf8" });
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/sandbox up.*sandbox down/s);
    for (const args of [["--help"], ["plan", "--help"], ["apply", "--help", "--no-color"]]) {
      const r = spawnSync(process.execPath, ["bin/shardform.js", ...args], { encoding: "utf8" });
      expect(r.stdout).not.toContain(String.fromCharCode(27));
      // Each option's value is named ("--seed HOST:PORT"), never clipanion's "#0".
      expect(r.stdout).not.toContain("#0");
    }
    const check = spawnSync(process.execPath, ["bin/shardform.js", "check", "--help"], { encoding: "utf8" });
    expect(check.stdout).toMatch(/--seed HOST:PORT +A reachable member/);
  });

  it("plan --out ends with the command that applies exactly that plan", async () => {
    const f = spec("same", [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`, `  - master: ${a(0)}`, `  - master: ${a(1)}`, `  - master: ${a(2)}`, `  - master: ${a(6)}`]);
    const out = join(work, "p.json");
    const r = await unchanged(() => runCli(["plan", f, "--out", out]));
    expect(r.stdout).toContain(`Saved the plan to ${out}. To perform exactly these actions, run: shardform apply ${out}`);
  });
});

describe("small things a new user meets", () => {
  it("version prints the version and the formats; apply makes a missing --state-dir; force-unlock --plan of a missing file is an error", async () => {
    const v = await runCli(["version"]);
    expect(v.stdout).toMatch(/^shardform \S+ \(Node\.js [\d.]+\); plan format 2, snapshot format 2, checkpoint format 2\n$/);
    const f = spec("as-is", [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`, `  - master: ${a(0)}`, `  - master: ${a(1)}`, `  - master: ${a(2)}`]);
    const state = join(work, "state-made-by-apply");
    const r = await runCli(["apply", f, "--auto-approve", "--state-dir", state]);
    expect(r.stdout + r.stderr).toContain("No changes");
    expect(r.code).toBe(0);
    expect(existsSync(state)).toBe(true);
    const missing = join(work, "no-such-dir", "deeper");
    const m = await runCli(["apply", f, "--auto-approve", "--state-dir", missing]);
    expect(m.code).toBe(1);
    expect(m.stderr).toContain(`--state-dir ${missing} does not exist and cannot be made (ENOENT): create it, or give another directory`);
    const u = await runCli(["force-unlock", "--seed", a(0), "--plan", join(work, "no-such-plan.json"), "--auto-approve"]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain("does not exist: give the plan file the apply ran");
  });
});

describe("sandbox down", () => {
  it("stops a node that was restarted, and removes the directory only once everything stopped", async () => {
    const dir = join(work, "sb");
    const s = await sandboxUp({ nodes: 2, basePort: BASE + 10, dir, nodeTimeoutMs: 2000 });
    const old = s.nodes[0]!.pid;
    process.kill(old, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const restarted = await sandboxRestart(dir, BASE + 10);
    expect(restarted).not.toBe(old);
    const stopped = await sandboxDown({ dir });
    expect(stopped).toEqual([BASE + 10, BASE + 11]);
    expect(() => process.kill(restarted, 0)).toThrow();
    expect(existsSync(dir)).toBe(false);
  });
});
