/**
 * The CI example (examples/ci/shardform-plan.yml) works: its `run` steps are run here as a runner
 * would run them (bash -e, the workflow's and the step's env, GITHUB_OUTPUT, the expressions filled
 * in), in a temporary repository holding a spec and the package made by `npm pack`, against real
 * Redis 7.0 processes. A pull request gets the plan as Markdown and passes; the schedule fails on
 * drift; a plan that fails puts its error text into the comment and fails the job.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { formatSpec } from "../../src/spec/format.js";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";

// Ports 20940-20942 (bus 30940-30942): this file's own range.
const BASE = 20940;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
let sb: TestSandbox;
let repo: string;
let prefix: string;

interface Step {
  name?: string;
  id?: string;
  run?: string;
  env?: Record<string, string>;
}
const workflow = parse(readFileSync("examples/ci/shardform-plan.yml", "utf8")) as { env: Record<string, string>; jobs: { plan: { steps: Step[] } } };
const steps = workflow.jobs.plan.steps.filter((s) => s.run);

/** Runs the workflow's `run` steps in order, as a runner would, until one fails: each step's exit code by name. */
function runWorkflow(event: "pull_request" | "schedule", only?: string[]): Record<string, number> {
  const output = join(repo, `github-output-${event}`);
  writeFileSync(output, "");
  const codes: Record<string, number> = {};
  for (const s of steps) {
    const name = s.name ?? s.id ?? "";
    if (only && !only.includes(name)) continue;
    const outputs = Object.fromEntries(readFileSync(output, "utf8").split("\n").filter(Boolean).map((l) => l.split("=", 2) as [string, string]));
    const script = s.run!
      .replace(/\$\{\{ secrets\.REDIS_PASSWORD \}\}/g, "")
      .replace(/\$\{\{ github\.event_name \}\}/g, event)
      .replace(/\$\{\{ steps\.plan\.outputs\.exitcode \}\}/g, outputs["exitcode"] ?? "");
    expect(script).not.toContain("${{");
    const env = Object.fromEntries(Object.entries({ ...workflow.env, ...s.env }).map(([k, v]) => [k, v.replace(/\$\{\{ secrets\.\w+ \}\}/g, "")]));
    const r = spawnSync("bash", ["-e", "-c", script], {
      cwd: repo,
      encoding: "utf8",
      timeout: 240_000,
      env: { ...process.env, ...env, GITHUB_OUTPUT: output, npm_config_prefix: prefix, PATH: `${join(prefix, "bin")}:${process.env["PATH"]}` },
    });
    codes[name] = r.status ?? -1;
    if (r.status !== 0) break;
  }
  return codes;
}

beforeAll(async () => {
  sb = await startNodes(BASE, 3);
  repo = mkdtempSync(join(tmpdir(), "shardform-ci-"));
  prefix = join(repo, ".global");
  mkdirSync(join(repo, "vendor"));
  execFileSync("npm", ["pack", "--silent", "--pack-destination", join(repo, "vendor"), process.cwd()], { stdio: "pipe" });
  expect(existsSync(join(repo, workflow.env["SHARDFORM_PACKAGE"]!))).toBe(true);
  writeFileSync(join(repo, "cluster.yaml"), formatSpec(`cluster:\n  seeds: ["${a(0)}"]\nshards:\n  - master: ${a(0)}\n  - master: ${a(1)}\n  - master: ${a(2)}\n`));
  // The install step, once: the package from vendor/, into a prefix of this repository.
  expect(runWorkflow("pull_request", ["install shardform"])).toEqual({ "install shardform": 0 });
}, 300_000);
afterAll(async () => {
  await sb?.stop();
});

describe("the CI example workflow", { timeout: 180_000 }, () => {
  it("on a pull request: validate, fmt --check and plan pass, plan.md is the Markdown plan, plan.json is kept; on the schedule, drift fails the job", () => {
    expect(runWorkflow("pull_request")).toEqual({ "install shardform": 0, validate: 0, fmt: 0, plan: 0, "fail on error, or on drift outside a PR": 0 });
    expect(readFileSync(join(repo, "plan.md"), "utf8")).toMatch(/^### shardform plan/);
    expect(JSON.parse(readFileSync(join(repo, "plan.json"), "utf8")).kind).toBe("shardform-plan");
    const scheduled = runWorkflow("schedule");
    expect(scheduled["fail on error, or on drift outside a PR"]).toBe(2);
  });

  it("a plan that fails puts its error into the comment and fails the job", () => {
    writeFileSync(join(repo, "cluster.yaml"), formatSpec(`cluster:\n  seeds: ["127.0.0.1:${BASE + 9}"]\nshards:\n  - master: 127.0.0.1:${BASE + 9}\n`));
    const codes = runWorkflow("pull_request");
    expect(codes["plan"]).toBe(0);
    expect(codes["fail on error, or on drift outside a PR"]).toBe(1);
    const md = readFileSync(join(repo, "plan.md"), "utf8");
    expect(md).toMatch(/^### shardform plan failed\n\n```\nError \(NodeUnreachableError\): cannot reach 127\.0\.0\.1:20949/);
  });
});
