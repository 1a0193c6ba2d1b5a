import stableStringify from "json-stable-stringify";
import { describe, expect, it } from "vitest";
import { stableJson } from "../../src/util/stable-json.js";
import { planSteps } from "../../src/planner/plan.js";
import { makePlan } from "../../src/plan/make.js";
import { parseSpec } from "../../src/spec/load.js";
import { A, observed } from "../helpers/build.js";

describe("stableJson: sorted keys, the engine's own JSON.stringify", () => {
  const odd = { b: [3, { z: 1, a: [] }, null, "é\u2028\n"], a: { y: undefined, x: {}, "10": 1, "9": 2 }, c: 1.5e-7, d: true, e: new Date(0), f: -0 };

  it("gives json-stable-stringify's bytes without indentation (so digests do not change)", () => {
    expect(stableJson(odd)).toBe(stableStringify(odd));
    const spec = parseSpec(`cluster: { seeds: ["${A(7000)}"] }\nshards:\n  - master: ${A(7000)}\n  - master: ${A(7001)}\n  - master: ${A(7002)}\n`, "t.yaml");
    const obs = observed([{ addr: A(7000), slots: ["0-8191"], keys: 100 }, { addr: A(7001), slots: ["8192-16383"], keys: 100 }], [A(7002)]);
    const { steps, notes } = planSteps(spec, obs);
    const plan = makePlan({ spec, specFile: "t.yaml", observed: obs, steps, notes, toolVersion: "test" });
    expect(steps.length).toBeGreaterThan(1000);
    expect(stableJson(plan)).toBe(stableStringify(plan));
  });

  it("indents as JSON.stringify does, keys sorted at every level", () => {
    expect(stableJson({ b: { d: 1, c: [] }, a: {} }, 2)).toBe('{\n  "a": {},\n  "b": {\n    "c": [],\n    "d": 1\n  }\n}');
  });
});
