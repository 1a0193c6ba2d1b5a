import { describe, expect, it } from "vitest";
import { planSteps } from "../../src/planner/plan.js";
import { makePlan } from "../../src/plan/make.js";
import { renderHuman } from "../../src/plan/render/human.js";
import { renderMarkdown } from "../../src/plan/render/markdown.js";
import { renderJson } from "../../src/plan/render/json.js";
import { renderGraph } from "../../src/plan/render/graph.js";
import { serializePlan } from "../../src/plan/file.js";
import type { ClusterSpec } from "../../src/spec/types.js";
import { A, observed, spec, splitShard } from "../helpers/build.js";

const o = observed(
  [
    { addr: A(7000), slots: ["0-5460"], keys: 61 * 5461, replicas: [A(7003)] },
    { addr: A(7001), slots: ["5461-10922"], keys: 61 * 5462, replicas: [A(7004)] },
    { addr: A(7002), slots: ["10923-16383"], keys: 61 * 5461, replicas: [A(7005)] },
  ],
  [A(7006), A(7007)],
);
const plan = (s: ClusterSpec) => {
  const { steps, notes } = planSteps(s, o);
  return makePlan({ spec: s, specFile: "x.yaml", observed: o, steps, notes, toolVersion: "0.0.0-test" });
};
const same = spec([
  { master: A(7000), replicas: [A(7003)] },
  { master: A(7001), replicas: [A(7004)] },
  { master: A(7002), replicas: [A(7005)] },
]);
const scaleOut = spec([...same.shards, { master: A(7006), replicas: [A(7007)] }]);
const scaleIn = spec(same.shards.slice(0, 2));

describe("terminal renderer", () => {
  it("collapses consecutive slot moves into one range line with a key estimate and closes with the totals", () => {
    const text = renderHuman(plan(scaleOut), { color: false });
    expect(text).toContain("+ meet 127.0.0.1:7006");
    expect(text).toContain("~ replicate 127.0.0.1:7007 -> master 127.0.0.1:7006");
    expect(text).toContain("[   4-1368]    ~ migrate-slot 4096-5460 (1365 slots, ~83K keys) 127.0.0.1:7000 -> 127.0.0.1:7006");
    expect(text.trim().split("\n").at(-1)).toBe("Plan: 2 nodes to add, 0 to remove, 1 replica to change, 4096 slots to move (~250K keys).");
    expect(text).not.toContain("\x1b[");
  });
  it("makes destructive steps stand out", () => {
    const text = renderHuman(plan(scaleIn), { color: false });
    expect(text).toMatch(/- forget-node 127\.0\.0\.1:7005 \(\w{8}\) on all members.*\(destructive\)/);
    expect(text).toContain("Warning: This plan removes 2 node(s) from the cluster: 127.0.0.1:7005, 127.0.0.1:7002.");
    expect(renderHuman(plan(scaleIn), { color: true })).toContain("\x1b[31;1m");
  });
  it("shows a move of stray keys as destructive, with the count in the totals and the warning", () => {
    const left = observed([
      { addr: A(7000), slots: ["0-99", "101-5460"], replicas: [A(7003)] },
      { addr: A(7001), slots: ["100-100", "5461-10922"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
    ]);
    left.nodes.find((n) => n.addr === A(7000))!.strayKeys = [{ slot: 100, keys: 7 }];
    const history = [{ slot: 100, from: [left.nodes.find((n) => n.addr === A(7000))!.id], to: [left.nodes.find((n) => n.addr === A(7001))!.id] }];
    const { steps } = planSteps(same, left, { history });
    const text = renderHuman(makePlan({ spec: same, specFile: "x.yaml", observed: left, steps, toolVersion: "0.0.0-test" }), { color: false });
    expect(text).toMatch(/~ move-stray-keys slot 100: 7 key\(s\) on 127\.0\.0\.1:7000, which does not own the slot, -> its owner 127\.0\.0\.1:7001; .*\(destructive\)/);
    expect(text).toContain("7 stray keys to move");
    expect(text).toContain("moves keys that clients cannot read to their slot's owner, deleting those the owner also holds (its copy is kept): slot 100 on 127.0.0.1:7000");
  });

  it("shows the deletion of a split shard's stale copies as destructive, with the count and the warning", () => {
    const split = splitShard(9);
    const n = (a: string) => split.nodes.find((x) => x.addr === a)!;
    const history = [{ slot: 100, from: [n(A(7000)).id], to: [n(A(7001)).id, n(A(7004)).id] }];
    const { steps } = planSteps(same, split, { history });
    const text = renderHuman(makePlan({ spec: same, specFile: "x.yaml", observed: split, steps, toolVersion: "0.0.0-test" }), { color: false });
    expect(text).toMatch(/- drop-stale-keys slot 100: 9 key\(s\) on 127\.0\.0\.1:7004, which does not own the slot: stale copies of 127\.0\.0\.1:7001's, .*\(destructive\)/);
    expect(text).toContain("9 stale copies to delete");
    expect(text).toContain("deletes stale copies of keys a split shard's other master serves: slot 100 on 127.0.0.1:7004");
  });

  it("says No changes when there are none", () => {
    expect(renderHuman(plan(same), { color: false })).toMatch(/No changes\. The cluster matches the spec\.\n$/);
  });
});

describe("markdown renderer", () => {
  it("puts the summary and a removal warning up top, steps in <details>, and a before/after diff", () => {
    const md = renderMarkdown(plan(scaleIn));
    const lines = md.split("\n");
    expect(lines[0]).toBe("### shardform plan");
    expect(lines[2]).toBe("**Plan: 0 nodes to add, 2 to remove, 5461 slots to move (~333K keys).**");
    expect(lines[4]).toBe("> [!WARNING]");
    expect(md).toContain("<details><summary>All 5463 steps</summary>");
    expect(md).not.toContain("[!NOTE]");
    expect(md).toContain("-127.0.0.1:7002 master  5461 slots  10923-16383");
    expect(md).toContain("+127.0.0.1:7000 master  8192 slots  0-5460,10923-13653");
    expect(md).toContain("(DESTRUCTIVE)");
  });
  it("has no warning for a plan that removes nothing", () => {
    expect(renderMarkdown(plan(scaleOut))).not.toContain("WARNING");
  });
});

describe("json renderer", () => {
  it("is the plan file's content", () => {
    const p = plan(scaleOut);
    expect(renderJson(p)).toBe(serializePlan(p));
  });
});

describe("graph renderer (DOT)", () => {
  it("draws a scale-out as a few boxes: the meets, the replicate and one box per source->target pair, with the needs as edges", () => {
    const p = plan(scaleOut);
    const dot = renderGraph(p);
    expect(dot.startsWith("digraph shardform_plan {")).toBe(true);
    const vertices = dot.split("\n").filter((l) => l.includes("[label"));
    expect(vertices).toHaveLength(2 + 1 + 3); // two meets, one replicate, three pairs
    expect(dot).toMatch(/"migrate 127\.0\.0\.1:7000 -> 127\.0\.0\.1:7006" \[label = "migrate-slot x1365 \(\d+-migrate-slot\.\.\d+-migrate-slot\)\\n4096-5460\\n127\.0\.0\.1:7000 -> 127\.0\.0\.1:7006, ~83K keys"\]/);
    const meet = p.steps.find((s) => s.kind === "meet" && s.node.addr === A(7006))!;
    expect(dot).toContain(`"${meet.id}" -> "migrate 127.0.0.1:7000 -> 127.0.0.1:7006";`);
    // every step's needs are edges (or inside one box)
    const full = renderGraph(p, { steps: true });
    expect(full.split("\n").filter((l) => l.includes("[label"))).toHaveLength(p.steps.length);
    expect(full.split("\n").filter((l) => l.includes(" -> ") && !l.includes("[label"))).toHaveLength(p.steps.reduce((n, s) => n + s.needs.length, 0));
  });
  it("draws destructive steps red", () => {
    const dot = renderGraph(plan(scaleIn));
    expect(dot).toMatch(/forget-node 127\.0\.0\.1:7005 .* on all members[^"]*", color = red/);
  });
});

describe("warnings with long lists", () => {
  it("the plan's data keeps the whole list; the terminal and Markdown show the first three and how many more", async () => {
    const { shortList } = await import("../../src/plan/hosts.js");
    const nodes = observed([
      { addr: A(7000), slots: ["0-3000"], replicas: [A(7010)] },
      { addr: A(7001), slots: ["3001-6000"], replicas: [A(7011)] },
      { addr: A(7002), slots: ["6001-9000"], replicas: [A(7012)] },
      { addr: A(7003), slots: ["9001-12000"], replicas: [A(7013)] },
      { addr: A(7004), slots: ["12001-16383"], replicas: [A(7014)] },
    ]);
    const p = makePlan({ spec: same, specFile: "x.yaml", observed: nodes, steps: [], warnings: (await import("../../src/plan/hosts.js")).hostWarnings(nodes.nodes), toolVersion: "0.0.0-test" });
    expect(p.warnings[0]).toContain(`${A(7014)} of ${A(7004)}`);
    expect(p.warnings[0]).not.toContain("...");
    expect(renderHuman(p, { color: false })).toContain(`(${A(7010)} of ${A(7000)}, ${A(7011)} of ${A(7001)}, ${A(7012)} of ${A(7002)}, and 2 more)`);
    expect(renderMarkdown(p)).toContain("and 2 more)");
    expect(shortList("a (x, y, z, w)")).toBe("a (x, y, z, w)");
  });
});

describe("nodes in the spec's spelling", () => {
  it("a member the spec writes another way is shown as the spec writes it, in the terminal and in Markdown; the plan's data keeps the address apply connects to", () => {
    const idOf7006 = o.outsiders.find((x) => x.addr === A(7006))!.id!;
    const idOf7000 = o.nodes.find((n) => n.addr === A(7000))!.id;
    const aliased = { ...o, aliases: [{ addr: "localhost:7000", id: idOf7000, how: "answered" as const }, { addr: "node-g.example:7006", id: idOf7006, how: "hostname" as const }] };
    const s = spec([{ master: "localhost:7000", replicas: [A(7003)] }, ...scaleOut.shards.slice(1, 3), { master: "node-g.example:7006", replicas: [A(7007)] }]);
    const { steps, notes, warnings } = planSteps(s, aliased);
    const p = makePlan({ spec: s, specFile: "x.yaml", observed: aliased, steps, notes, warnings, toolVersion: "0.0.0-test" });
    const human = renderHuman(p, { color: false });
    expect(human).toMatch(/meet node-g\.example:7006 \([0-9a-f]{8}\) via/);
    expect(human).toMatch(/migrate-slot \S+ \(\d+ slots, ~[\d.]+K keys\) localhost:7000 -> node-g\.example:7006/);
    expect(human).not.toMatch(/-> 127\.0\.0\.1:7006/);
    expect(renderMarkdown(p)).toContain("node-g.example:7006");
    // Warnings too (here: replicas on their master's host); only the note says which member each spelling is.
    expect(human).toMatch(/^Warning: .*127\.0\.0\.1:7003 of localhost:7000/m);
    expect(human.split("\n").filter((l) => l.includes(A(7000))).every((l) => l.startsWith("Note: "))).toBe(true);
    // The data: the addresses apply connects to.
    expect(JSON.stringify(p.steps)).not.toContain("node-g.example");
  });
});
