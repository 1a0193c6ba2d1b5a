import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planSteps } from "../../src/planner/plan.js";
import { makePlan, planDigest } from "../../src/plan/make.js";
import { parsePlan, readPlan, serializePlan, writePlan } from "../../src/plan/file.js";
import { PlanFormatError, PlanTamperedError } from "../../src/errors.js";
import { Ajv } from "ajv";
import { A, observed, spec } from "../helpers/build.js";

function scaleOutPlan() {
  const o = observed(
    [
      { addr: A(7000), slots: ["0-5460"], keys: 30000, replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"], keys: 30000, replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], keys: 30000, replicas: [A(7005)] },
    ],
    [A(7006), A(7007)],
  );
  const s = spec([
    { master: A(7000), replicas: [A(7003)] },
    { master: A(7001), replicas: [A(7004)] },
    { master: A(7002), replicas: [A(7005)] },
    { master: A(7006), replicas: [A(7007)] },
  ]);
  const { steps, notes } = planSteps(s, o);
  return makePlan({ spec: s, specFile: "scale.yaml", observed: o, steps, notes, toolVersion: "0.0.0-test" });
}

describe("plan file", () => {
  const dir = mkdtempSync(join(tmpdir(), "shardform-planfile-"));

  it("survives a write and a read unchanged, byte for byte", () => {
    const plan = scaleOutPlan();
    const f = join(dir, "plan.json");
    writePlan(f, plan);
    const back = readPlan(f);
    expect(back).toEqual(plan);
    expect(serializePlan(back)).toBe(readFileSync(f, "utf8"));
  });

  it("gives the same bytes for the same inputs", () => {
    expect(serializePlan(scaleOutPlan())).toBe(serializePlan(scaleOutPlan()));
  });

  it("carries format version, spec digest, fingerprint, node refs with id and addr, and a summary", () => {
    const plan = scaleOutPlan();
    expect(plan.formatVersion).toBe(2);
    expect(plan.specDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(plan.observed.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    const meet = plan.steps[0]!;
    expect(meet).toMatchObject({ id: "1-meet", kind: "meet", needs: [], node: { addr: A(7006), id: expect.stringMatching(/^[0-9a-f]{40}$/) } });
    // a slot move needs the meet of its target; the replica's replicate needs both meets
    expect(plan.steps.find((s) => s.kind === "migrate-slot")!.needs).toContain("1-meet");
    expect(plan.steps.find((s) => s.kind === "replicate")!.needs).toEqual(["1-meet", "2-meet"]);
    expect(plan.summary).toMatchObject({ nodesToAdd: 2, nodesToRemove: 0, slotsToMove: 4096, replicasToChange: 1, changes: true, destructive: false });
  });

  // A plan as parsed JSON, loosely typed so a test can edit it like a person would.
  type Loose = { steps: { to: { addr: string } }[]; observed: { fingerprint: string }; summary: Record<string, unknown> };
  it.each([
    ["a step's target", (p: Loose) => (p.steps[5]!.to.addr = "127.0.0.1:7001")],
    ["the fingerprint", (p: Loose) => (p.observed.fingerprint = "sha256:" + "0".repeat(64))],
    ["a removed step", (p: Loose) => void p.steps.splice(3, 1)],
    ["the summary", (p: Loose) => void (p.summary["nodesToRemove"] = 9)],
  ])("detects a hand edit of %s", (_what, edit) => {
    const p = JSON.parse(serializePlan(scaleOutPlan())) as Loose;
    edit(p);
    expect(() => parsePlan(JSON.stringify(p), "plan.json")).toThrow(PlanTamperedError);
    expect(() => parsePlan(JSON.stringify(p), "plan.json")).toThrow(/was changed after it was written.*run `shardform plan` again/s);
  });

  it("matches schemas/plan.schema.json", () => {
    const validate = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync("schemas/plan.schema.json", "utf8")));
    const plan = JSON.parse(serializePlan(scaleOutPlan()));
    expect(validate(plan) ? [] : validate.errors).toEqual([]);
    plan.steps[0].kind = "explode";
    expect(validate(plan)).toBe(false);
  });

  it("rejects an unknown format version, an unknown step kind, and non-plans", () => {
    const p = JSON.parse(serializePlan(scaleOutPlan()));
    expect(() => parsePlan(JSON.stringify({ ...p, formatVersion: 99 }), "x.json")).toThrow(/plan format 99 is not supported \(this version reads format 2\)/);
    expect(() => parsePlan(JSON.stringify({ ...p, formatVersion: 1 }), "x.json")).toThrow(/made by an older shardform \(plan format 1.*shardform plan SPEC --out plan\.json/);
    const q = JSON.parse(serializePlan(scaleOutPlan()));
    q.steps[0].kind = "explode";
    q.digest = planDigest(q);
    expect(() => parsePlan(JSON.stringify(q), "x.json")).toThrow(/invalid step kind "explode"/);
    expect(() => parsePlan("{}", "x.json")).toThrow(PlanFormatError);
    expect(() => parsePlan("not json", "x.json")).toThrow(/not JSON/);
    writeFileSync(join(dir, "empty.json"), "");
    expect(() => readPlan(join(dir, "empty.json"))).toThrow(PlanFormatError);
  });
});
