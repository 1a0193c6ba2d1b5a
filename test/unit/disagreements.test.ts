import { describe, expect, it } from "vitest";
import { compactViews, findDisagreements } from "../../src/observe/disagreements.js";
import type { ObservedNode, ViewEntry } from "../../src/observe/types.js";
import { A, observed } from "../helpers/build.js";

/** Gives every node the full view of a healthy cluster: a line for every other member, all agreeing. */
function withFullViews(nodes: ObservedNode[]): ObservedNode[] {
  const lines: ViewEntry[] = nodes.map((n) => ({ id: n.id, addr: n.addr, role: n.role, masterId: n.masterId, flags: [], linkConnected: true, slots: n.slots }));
  return nodes.map((n) => ({ ...n, view: lines.filter((e) => e.id !== n.id) }));
}

describe("compactViews", () => {
  const base = observed([
    { addr: A(7000), slots: ["0-5460"], replicas: [A(7003)] },
    { addr: A(7001), slots: ["5461-10922"] },
    { addr: A(7002), slots: ["10923-16383"] },
  ]).nodes;

  it("stores nothing for a healthy cluster", () => {
    const compact = compactViews(withFullViews(base));
    for (const n of compact) {
      expect(n.view).toEqual([]);
      expect(n.unknownMembers).toEqual([]);
    }
    expect(findDisagreements(compact)).toEqual([]);
  });

  it("keeps exactly the lines that disagree, and finds the same disagreements", () => {
    const full = withFullViews(base);
    const viewer = full.find((n) => n.addr === A(7001))!;
    // 7001 sees stale slots for 7000 and does not list 7003 at all.
    viewer.view = viewer.view!.filter((e) => e.addr !== A(7003)).map((e) => (e.addr === A(7000) ? { ...e, slots: [[0, 100]] } : e));
    const compact = compactViews(full);
    const c = compact.find((n) => n.addr === A(7001))!;
    expect(c.view!.map((e) => e.addr)).toEqual([A(7000)]);
    expect(c.unknownMembers).toEqual([base.find((n) => n.addr === A(7003))!.id]);
    expect(findDisagreements(compact)).toEqual(findDisagreements(full));
    expect(findDisagreements(compact)).toEqual([
      `${A(7001)} sees ${A(7000)} owning slots 0-100, but it claims 0-5460`,
      `${A(7001)} does not know ${A(7003)}`,
    ]);
  });
});
