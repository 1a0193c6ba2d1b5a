import { describe, expect, it } from "vitest";
import { planSteps } from "../../src/planner/plan.js";
import { simulate } from "../../src/plan/simulate.js";
import { PlanningError } from "../../src/errors.js";
import type { Step } from "../../src/plan/types.js";
import { A, idOf, observed, spec, splitShard } from "../helpers/build.js";

const kinds = (steps: Step[]): Record<string, number> =>
  steps.reduce<Record<string, number>>((acc, s) => ((acc[s.kind] = (acc[s.kind] ?? 0) + 1), acc), {});

const three = () =>
  observed([
    { addr: A(7000), slots: ["0-5460"], keys: 5461 * 6, replicas: [A(7003)] },
    { addr: A(7001), slots: ["5461-10922"], keys: 5462 * 6, replicas: [A(7004)] },
    { addr: A(7002), slots: ["10923-16383"], keys: 5461 * 6, replicas: [A(7005)] },
  ]);
const threeSpec = () =>
  spec([
    { master: A(7000), replicas: [A(7003)] },
    { master: A(7001), replicas: [A(7004)] },
    { master: A(7002), replicas: [A(7005)] },
  ]);

interface Case {
  name: string;
  observed: ReturnType<typeof observed>;
  spec: ReturnType<typeof spec>;
  kinds: Record<string, number>;
  check?: (steps: Step[]) => void;
}

const cases: Case[] = [
  {
    name: "no changes when the spec matches the cluster",
    observed: three(),
    spec: threeSpec(),
    kinds: {},
  },
  {
    name: "creates a cluster from empty nodes",
    observed: observed([{ addr: A(7000) }], [A(7001), A(7002), A(7003), A(7004), A(7005)]),
    spec: threeSpec(),
    kinds: { meet: 5, "add-slots": 3, replicate: 3 },
    check: (steps) => {
      const add = steps.filter((s) => s.kind === "add-slots");
      expect(add.map((s) => s.kind === "add-slots" && s.ranges)).toEqual([[[0, 5461]], [[5462, 10922]], [[10923, 16383]]]);
      // every meet comes before any slot is assigned
      const lastMeet = steps.findLastIndex((s) => s.kind === "meet");
      expect(steps.findIndex((s) => s.kind === "add-slots")).toBeGreaterThan(lastMeet);
    },
  },
  {
    name: "adds a shard: meets first, then its replica, then ~4096 slot moves",
    observed: observed(three().nodes.length ? [
      { addr: A(7000), slots: ["0-5460"], keys: 5461 * 6, replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"], keys: 5462 * 6, replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], keys: 5461 * 6, replicas: [A(7005)] },
    ] : [], [A(7006), A(7007)]),
    spec: spec([...threeSpec().shards, { master: A(7006), replicas: [A(7007)] }]),
    kinds: { meet: 2, replicate: 1, "migrate-slot": 4096 },
    check: (steps) => {
      expect(steps.slice(0, 3).map((s) => s.kind)).toEqual(["meet", "meet", "replicate"]);
      const moves = steps.filter((s) => s.kind === "migrate-slot");
      expect(moves.every((s) => s.kind === "migrate-slot" && s.to.addr === A(7006))).toBe(true);
      expect(moves.every((s) => s.kind === "migrate-slot" && s.estKeys === 6)).toBe(true);
    },
  },
  {
    name: "removes a shard: drains it, then forgets its replica before its master",
    observed: three(),
    spec: spec(threeSpec().shards.slice(0, 2)),
    kinds: { "migrate-slot": 5461, "forget-node": 2 },
    check: (steps) => {
      const forgets = steps.filter((s) => s.kind === "forget-node");
      expect(forgets.map((s) => s.kind === "forget-node" && s.node.addr)).toEqual([A(7005), A(7002)]);
      expect(steps.findIndex((s) => s.kind === "forget-node")).toBeGreaterThan(steps.findLastIndex((s) => s.kind === "migrate-slot"));
      expect(forgets.every((s) => s.kind === "forget-node" && s.destructive)).toBe(true);
    },
  },
  {
    name: "removes a shard but keeps its replica under another master",
    observed: three(),
    spec: spec([{ master: A(7000), replicas: [A(7003), A(7005)] }, { master: A(7001), replicas: [A(7004)] }]),
    kinds: { replicate: 1, "migrate-slot": 5461, "forget-node": 1 },
    check: (steps) => expect(steps[0]).toMatchObject({ kind: "replicate", replica: { addr: A(7005) }, master: { addr: A(7000) } }),
  },
  {
    name: "adds a replica",
    observed: observed(three().nodes.length ? [
      { addr: A(7000), slots: ["0-5460"], replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
    ] : [], [A(7006)]),
    spec: spec([{ master: A(7000), replicas: [A(7003), A(7006)] }, ...threeSpec().shards.slice(1)]),
    kinds: { meet: 1, replicate: 1 },
  },
  {
    name: "removes a replica",
    observed: three(),
    spec: spec([{ master: A(7000) }, ...threeSpec().shards.slice(1)]),
    kinds: { "forget-node": 1 },
  },
  {
    name: "moves a replica to another master",
    observed: three(),
    spec: spec([{ master: A(7000) }, { master: A(7001), replicas: [A(7004), A(7003)] }, threeSpec().shards[2]!]),
    kinds: { replicate: 1 },
  },
  {
    name: "fails over when the spec master is live a replica",
    observed: three(),
    spec: spec([{ master: A(7003), replicas: [A(7000)] }, ...threeSpec().shards.slice(1)]),
    kinds: { failover: 1 },
    check: (steps) => expect(steps[0]).toMatchObject({ kind: "failover", replica: { addr: A(7003) }, master: { addr: A(7000) } }),
  },
  {
    name: "balances by weight",
    observed: three(),
    spec: spec([{ master: A(7000), replicas: [A(7003)], weight: 2 }, ...threeSpec().shards.slice(1)]),
    kinds: { "migrate-slot": 8192 - 5461 },
  },
  {
    name: "leaves a distribution inside the threshold alone",
    observed: observed([
      { addr: A(7000), slots: ["0-5500"] },
      { addr: A(7001), slots: ["5501-10922"] },
      { addr: A(7002), slots: ["10923-16383"] },
    ]),
    spec: spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002) }]),
    kinds: {},
  },
  {
    name: "rebalances a distribution outside the threshold",
    observed: observed([
      { addr: A(7000), slots: ["0-6000"] },
      { addr: A(7001), slots: ["6001-10922"] },
      { addr: A(7002), slots: ["10923-16383"] },
    ]),
    spec: spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002) }]),
    kinds: { "migrate-slot": 6001 - 5462 },
  },
  {
    name: "honours pinned slots",
    observed: three(),
    spec: spec([{ master: A(7000), replicas: [A(7003)], slots: [[0, 99]] }, ...threeSpec().shards.slice(1)]),
    kinds: { "migrate-slot": 5361 },
    check: (steps) => {
      const m = simulate(three(), steps);
      expect(m.owner.filter((o) => o === idOf(A(7000)))).toHaveLength(100);
      expect(m.owner.slice(0, 100).every((o) => o === idOf(A(7000)))).toBe(true);
    },
  },
  {
    name: "finishes a slot move left open, toward the importing node, before anything else",
    observed: observed([
      { addr: A(7000), slots: ["0-5460"], migrating: [[5443, A(7001)]] },
      { addr: A(7001), slots: ["5461-10922"], importing: [[5443, A(7000)]] },
      { addr: A(7002), slots: ["10923-16383"] },
    ]),
    spec: spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002) }]),
    kinds: { "migrate-slot": 1 },
    check: (steps) =>
      expect(steps[0]).toMatchObject({ kind: "migrate-slot", slot: 5443, from: { addr: A(7000) }, to: { addr: A(7001) }, reason: expect.stringMatching(/interrupted/) }),
  },
  {
    name: "demotes a master to a replica after draining it",
    observed: three(),
    spec: spec([{ master: A(7000), replicas: [A(7003), A(7002)] }, { master: A(7001), replicas: [A(7004)] }, ]),
    kinds: { "migrate-slot": 5461, replicate: 1, "forget-node": 1 },
    check: (steps) => {
      expect(steps.at(-2)).toMatchObject({ kind: "forget-node", node: { addr: A(7005) } });
      expect(steps.at(-1)).toMatchObject({ kind: "replicate", replica: { addr: A(7002) }, master: { addr: A(7000) } });
    },
  },
  {
    name: "demotes a master without replicas to a replica after draining it",
    observed: three(),
    spec: spec([{ master: A(7000), replicas: [A(7002)] }, { master: A(7001) }]),
    kinds: { "migrate-slot": 5461, replicate: 1, "forget-node": 3 },
    check: (steps) => expect(steps.find((s) => s.kind === "replicate")).toMatchObject({ replica: { addr: A(7002) }, master: { addr: A(7000) } }),
  },
  {
    name: "a new node replaces a master that stays as its replica: it syncs, then takes over by failover; no key moves",
    observed: observed(three().nodes.length ? [
      { addr: A(7000), slots: ["0-5460"], replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
    ] : [], [A(7006)]),
    spec: spec([{ master: A(7006), replicas: [A(7000), A(7003)] }, ...threeSpec().shards.slice(1)]),
    kinds: { meet: 1, replicate: 1, failover: 1 },
    check: (steps) => {
      expect(steps.map((s) => s.kind)).toEqual(["meet", "replicate", "failover"]);
      expect(steps[1]).toMatchObject({ replica: { addr: A(7006) }, master: { addr: A(7000) }, needs: ["1-meet"] });
      expect(steps[2]).toMatchObject({ kind: "failover", replica: { addr: A(7006) }, master: { addr: A(7000) }, needs: ["2-replicate"] });
    },
  },
  {
    name: "after a failover Redis made on its own (a spec master is now its replica's replica), plans the failover back",
    observed: (() => {
      const o = three();
      const m = o.nodes.find((n) => n.addr === A(7001))!;
      const r = o.nodes.find((n) => n.addr === A(7004))!;
      Object.assign(r, { role: "master", masterId: null, slots: m.slots });
      Object.assign(m, { role: "replica", masterId: r.id, slots: [] });
      return o;
    })(),
    spec: threeSpec(),
    kinds: { failover: 1 },
    check: (steps) => expect(steps[0]).toMatchObject({ kind: "failover", replica: { addr: A(7001) }, master: { addr: A(7004) } }),
  },
  {
    name: "an open slot toward a target that was failed over is finished toward the master that now holds its data",
    observed: (() => {
      const o = observed([
        { addr: A(7000), slots: ["0-5460"], migrating: [[5000, A(7006)]], replicas: [A(7003)] },
        { addr: A(7001), slots: ["5461-10922"], replicas: [A(7004)] },
        { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
        { addr: A(7007), slots: ["0-0"], replicas: [A(7006)] },
      ]);
      // 7007 was 7006's replica and took over: it holds keys of slot 5000 that 7006 had received
      const n7007 = o.nodes.find((n) => n.addr === A(7007))!;
      n7007.slots = [];
      n7007.strayKeys = [{ slot: 5000, keys: 24 }];
      return o;
    })(),
    spec: spec([...threeSpec().shards, { master: A(7006), replicas: [A(7007)] }]),
    kinds: { "migrate-slot": 4096, failover: 1 },
    check: (steps) => {
      expect(steps[0]).toMatchObject({ kind: "migrate-slot", slot: 5000, from: { addr: A(7000) }, to: { addr: A(7007) }, reason: expect.stringMatching(/interrupted/) });
      expect(steps.find((s) => s.kind === "failover")).toMatchObject({ replica: { addr: A(7006) }, master: { addr: A(7007) } });
    },
  },
  {
    name: "resets a node with keys only when the spec allows it, and shows it",
    observed: observed(three().nodes.length ? [
      { addr: A(7000), slots: ["0-5460"], replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
    ] : [], [{ addr: A(7006), state: "has-keys", keys: 12, detail: "holds 12 key(s)" }]),
    spec: spec([{ master: A(7000), replicas: [A(7003), A(7006)] }, ...threeSpec().shards.slice(1)], { allowReset: [A(7006)] }),
    kinds: { "reset-node": 1, meet: 1, replicate: 1 },
    check: (steps) => expect(steps[0]).toMatchObject({ kind: "reset-node", destructive: true, keys: 12 }),
  },
];

describe("planner situations", () => {
  it.each(cases)("$name", (c) => {
    const { steps } = planSteps(c.spec, c.observed);
    const expected = Object.fromEntries(Object.entries(c.kinds).filter(([, n]) => n > 0));
    expect(kinds(steps)).toEqual(expected);
    // every step is valid in order (the simulator throws otherwise)
    simulate(c.observed, steps);
    expect(new Set(steps.map((s) => s.id)).size).toBe(steps.length);
    c.check?.(steps);
  });
});

describe("failing a shard back after the cluster failed it over during apply", () => {
  it("a spec master that Redis made follow another spec master (a target that took its slots) re-points to its promoted replica, then takes over: no key moves", () => {
    const o = observed([
      { addr: A(7003), slots: ["0-5460"] },
      { addr: A(7001), slots: ["5461-10922"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005), A(7000)] },
    ]);
    const { steps } = planSteps(threeSpec(), o);
    expect(steps.map((x) => `${x.kind} ${"replica" in x ? `${x.replica.addr} ${x.master.addr}` : ""}`)).toEqual([
      `replicate ${A(7000)} ${A(7003)}`,
      `failover ${A(7000)} ${A(7003)}`,
    ]);
    const end = simulate(o, steps);
    expect(end.owner[0]).toBe(idOf(A(7000)));
    expect(end.nodes.get(idOf(A(7003)))).toMatchObject({ role: "replica", masterId: idOf(A(7000)) });
  });
});

describe("planner refusals", () => {
  const base = () =>
    observed(
      [
        { addr: A(7000), slots: ["0-5460"] },
        { addr: A(7001), slots: ["5461-10922"] },
        { addr: A(7002), slots: ["10923-16383"] },
      ],
      [
        { addr: A(7006), state: "has-keys", keys: 3, detail: "holds 3 key(s)" },
        { addr: A(7007), state: "other-cluster", detail: "knows 2 other node(s) and owns 1 slot range(s)" },
        { addr: A(7008), state: "unreachable", detail: "connect ECONNREFUSED" },
      ],
    );
  const add = (addr: string) => spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002), replicas: [addr] }]);
  it.each([
    [A(7006), /holds 3 key\(s\): shardform never resets a node on its own.*allowReset/],
    [A(7007), /knows 2 other node.*never resets/],
    [A(7008), /cannot be reached \(connect ECONNREFUSED\)/],
    [A(7009), /was not observed/],
  ])("refuses to add %s", (addr, msg) => {
    expect(() => planSteps(add(addr), base())).toThrow(PlanningError);
    expect(() => planSteps(add(addr), base())).toThrow(msg);
  });
  it("never resets a live member, even when allowReset names it", () => {
    const s = spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002) }], { allowReset: [A(7001)] });
    const { steps, notes } = planSteps(s, base());
    expect(steps).toEqual([]);
    expect(notes).toContain("127.0.0.1:7001 is in cluster.allowReset but is already a member: it will not be reset");
  });
  it("refuses when members disagree about slot owners", () => {
    const o = base();
    o.nodes[0]!.view = [{ id: o.nodes[1]!.id, addr: o.nodes[1]!.addr, role: "master", masterId: null, flags: [], linkConnected: true, slots: [[5461, 10000]] }];
    expect(() => planSteps(spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002) }]), o)).toThrow(/disagree/);
  });
  it("refuses a plan that removes half or more of the slot-owning masters, unless permitted", () => {
    const o = three();
    const typo = spec([{ master: A(7000) }]);
    expect(() => planSteps(typo, o)).toThrow(/this plan removes 2 of the 3 masters that own slots \(127\.0\.0\.1:7001, 127\.0\.0\.1:7002\).*--allow-mass-removal/);
    expect(planSteps(typo, o, { allowMassRemoval: true }).steps.filter((s) => s.kind === "forget-node")).toHaveLength(5);
    // an ordinary scale-in (1 of 3) needs nothing
    expect(() => planSteps(spec(threeSpec().shards.slice(0, 2)), o)).not.toThrow();
  });
  it("never removes or drains a protected node", () => {
    const o = three();
    const s = spec(threeSpec().shards.slice(0, 2), { protect: [A(7002)] });
    expect(() => planSteps(s, o)).toThrow(/the plan would remove 127\.0\.0\.1:7002, which cluster\.protect protects/);
  });
  it("refuses to swap masters between shards", () => {
    expect(() => planSteps(spec([{ master: A(7000) }, { master: A(7003) }, { master: A(7001) }, { master: A(7002) }]), three())).toThrow(/replica of 127.0.0.1:7000, which the spec also keeps as a master/);
  });
});

describe("keys left on a node that does not own their slot (safety rule 9)", () => {
  // 7003 was 7000's replica and took over mid-move; slot 100 had moved to 7001 without 24 of its keys.
  const left = () => {
    const o = observed([
      { addr: A(7003), slots: ["0-99", "101-5460"], replicas: [A(7000)] },
      { addr: A(7001), slots: ["100-100", "5461-10922"], replicas: [A(7004)] },
      { addr: A(7002), slots: ["10923-16383"], replicas: [A(7005)] },
    ]);
    o.nodes.find((n) => n.addr === A(7003))!.strayKeys = [{ slot: 100, keys: 24 }];
    return o;
  };
  const want = () =>
    spec([
      { master: A(7003), replicas: [A(7000)] },
      { master: A(7001), replicas: [A(7004)] },
      { master: A(7002), replicas: [A(7005)] },
    ]);
  // The earlier plan moved slot 100 from 7000 (whose replica was 7003) to 7001.
  const earlier = [{ slot: 100, from: [idOf(A(7000)), idOf(A(7003))], to: [idOf(A(7001)), idOf(A(7004))] }];

  it("are refused without a plan that explains them, naming --history", () => {
    expect(() => planSteps(want(), left())).toThrow(/7003 holds 24 key\(s\) of slot 100, which 127\.0\.0\.1:7001 owns.*--history THAT_PLAN\.json/);
  });
  it("are refused when the plan given moved that slot elsewhere", () => {
    const other = [{ ...earlier[0]!, to: [idOf(A(7002))] }];
    expect(() => planSteps(want(), left(), { history: other })).toThrow(/no plan given with --history moved slot 100/);
  });
  it("are moved to the owner, as a destructive step, when an earlier plan moved the slot from their shard to the owner", () => {
    const { steps } = planSteps(want(), left(), { history: earlier });
    expect(steps).toEqual([
      expect.objectContaining({ kind: "move-stray-keys", slot: 100, from: { id: idOf(A(7003)), addr: A(7003) }, to: { id: idOf(A(7001)), addr: A(7001) }, keys: 24, destructive: true }),
    ]);
    simulate(left(), steps);
  });
  it("come before a later move of that slot and before their holder is changed", () => {
    // slot 100 is pinned to 7002: it moves there from 7001, with the keys the first step brings.
    const s = spec([{ master: A(7003), replicas: [A(7000)] }, { master: A(7001), replicas: [A(7004)] }, { master: A(7002), replicas: [A(7005)], slots: [[100, 100]] }]);
    const { steps } = planSteps(s, left(), { history: earlier });
    const stray = steps.find((x) => x.kind === "move-stray-keys")!;
    const move = steps.find((x) => x.kind === "migrate-slot" && x.slot === 100)!;
    expect(move.needs).toContain(stray.id);
  });
  it("are moved before the move that takes the holder's last slot (Redis then makes the holder a replica, flushing them); its other moves need not wait", () => {
    // 7003's shard is removed: its slots go to the two others, and it is forgotten.
    const s = spec([{ master: A(7001), replicas: [A(7004)] }, { master: A(7002), replicas: [A(7005)] }]);
    const { steps } = planSteps(s, left(), { history: earlier, allowMassRemoval: true });
    const stray = steps.find((x) => x.kind === "move-stray-keys")!;
    const out = steps.filter((x) => x.kind === "migrate-slot" && x.from.addr === A(7003));
    expect(out.length).toBe(5460);
    const last = out.filter((x) => x.needs.includes(stray.id));
    expect(last.map((x) => x.kind === "migrate-slot" && x.slot)).toEqual([5460]);
    simulate(left(), steps);
  });
  it("are refused while their slot is open", () => {
    const o = left();
    o.nodes.find((n) => n.addr === A(7001))!.migrating = [{ slot: 100, peerId: idOf(A(7002)) }];
    o.nodes.find((n) => n.addr === A(7002))!.importing = [{ slot: 100, peerId: idOf(A(7001)) }];
    expect(() => planSteps(want(), o, { history: earlier })).toThrow(/slot 100 is open: finish or close that move first/);
  });
});

describe("availability while a plan runs", () => {
  const four = () =>
    observed([
      { addr: A(7000), slots: ["0-4095"], replicas: [A(7004)] },
      { addr: A(7001), slots: ["4096-8191"], replicas: [A(7005)] },
      { addr: A(7002), slots: ["8192-12287"], replicas: [A(7006)] },
      { addr: A(7003), slots: ["12288-16383"], replicas: [A(7007)] },
    ]);
  it("a scale-in keeps the drained master's replica until every slot of the master has moved", () => {
    const { steps } = planSteps(spec([{ master: A(7000), replicas: [A(7004)] }, { master: A(7001), replicas: [A(7005)] }, { master: A(7002), replicas: [A(7006)] }]), four());
    const moves = steps.filter((s) => s.kind === "migrate-slot" && s.from.addr === A(7003)).map((s) => s.id);
    const replica = steps.find((s) => s.kind === "forget-node" && s.node.addr === A(7007))!;
    expect(moves.length).toBe(4096);
    expect(replica.needs).toEqual(expect.arrayContaining(moves));
  });
  it("a scale-in gives each remaining master one contiguous range of the drained master's slots, not a scattering", () => {
    const { steps } = planSteps(spec([{ master: A(7000), replicas: [A(7004)] }, { master: A(7001), replicas: [A(7005)] }, { master: A(7002), replicas: [A(7006)] }]), four());
    const byTarget = new Map<string, number[]>();
    for (const s of steps) if (s.kind === "migrate-slot") byTarget.set(s.to.addr, [...(byTarget.get(s.to.addr) ?? []), s.slot]);
    expect(byTarget.size).toBe(3);
    for (const slots of byTarget.values()) {
      const sorted = [...slots].sort((x, y) => x - y);
      expect(sorted.at(-1)! - sorted[0]! + 1).toBe(sorted.length);
    }
  });
  it("a master replaced by a new node in one edit (its replicas kept): the new node replicates it, takes over by failover, and the old master leaves as a replica; no key moves", () => {
    const o = observed(
      [
        { addr: A(7000), slots: ["0-4095"], replicas: [A(7004)], keys: 1000 },
        { addr: A(7001), slots: ["4096-8191"], replicas: [A(7005)], keys: 1000 },
        { addr: A(7002), slots: ["8192-12287"], replicas: [A(7006)], keys: 1000 },
        { addr: A(7003), slots: ["12288-16383"], replicas: [A(7007)], keys: 1000 },
      ],
      [A(7008)],
    );
    const { steps } = planSteps(spec([{ master: A(7008), replicas: [A(7004)] }, { master: A(7001), replicas: [A(7005)] }, { master: A(7002), replicas: [A(7006)] }, { master: A(7003), replicas: [A(7007)] }]), o);
    expect(steps.filter((s) => s.kind === "migrate-slot")).toHaveLength(0);
    const order = steps.map((s) => `${s.kind} ${"node" in s ? s.node.addr : "replica" in s ? `${s.replica.addr} -> ${s.master.addr}` : ""}`);
    const at = [`meet ${A(7008)}`, `replicate ${A(7008)} -> ${A(7000)}`, `failover ${A(7008)} -> ${A(7000)}`, `forget-node ${A(7000)}`].map((x) => order.indexOf(x));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    // The end state: the new node owns the old master's slots, with the shard's replica; the old master is gone.
    const end = simulate(o, steps);
    expect(end.nodes.has(idOf(A(7000)))).toBe(false);
    expect(end.owner[0]).toBe(idOf(A(7008)));
    expect(end.nodes.get(idOf(A(7004)))?.masterId).toBe(idOf(A(7008)));
    // The old master is forgotten only after the failover.
    const failover = steps.find((s) => s.kind === "failover")!;
    expect(steps.find((s) => s.kind === "forget-node")!.needs).toContain(failover.id);
  });
  it("a master the spec drops while its replicas stay in another shard's list is not 'replaced': its slots move", () => {
    const o = observed([{ addr: A(7000), slots: ["0-8191"], replicas: [A(7004)] }, { addr: A(7001), slots: ["8192-16383"] }], [A(7008)]);
    // 7008 is a new master with no replicas of 7000 in its shard: nothing links it to 7000.
    const { steps } = planSteps(spec([{ master: A(7008) }, { master: A(7001), replicas: [A(7004)] }]), o, { allowMassRemoval: true });
    expect(steps.filter((s) => s.kind === "failover")).toHaveLength(0);
    expect(steps.filter((s) => s.kind === "migrate-slot").length).toBeGreaterThan(0);
  });
  it("warns when a master ends the plan without a replica", () => {
    const { warnings } = planSteps(spec([{ master: A(7000) }, { master: A(7001), replicas: [A(7005)] }, { master: A(7002), replicas: [A(7006)] }, { master: A(7003), replicas: [A(7007)] }]), four());
    expect(warnings).toContainEqual(expect.stringMatching(/^1 master\(s\) end this plan without a replica \(127\.0\.0\.1:7000\)/));
  });
});

describe("a shard split by a failover: stale copies on the promoted replica (safety rule 9)", () => {
  // test/helpers/build.ts splitShard: 7004, promoted from 7001, holds 12 stale copies of slot 100's keys.
  const split = (replId2?: string) => splitShard(12, replId2);
  const want = () =>
    spec([
      { master: A(7000), replicas: [A(7003)] },
      { master: A(7001), replicas: [A(7004)] },
      { master: A(7002), replicas: [A(7005)] },
    ]);
  const earlier = [{ slot: 100, from: [idOf(A(7000)), idOf(A(7003))], to: [idOf(A(7001)), idOf(A(7004))] }];

  it("are deleted (drop), as a destructive step before anything else touches either master, when the promoted node's previous replication id is the owner's", () => {
    const { steps } = planSteps(want(), split(), { history: earlier });
    const drop = steps.find((x) => x.kind === "move-stray-keys")!;
    expect(drop).toEqual(expect.objectContaining({ slot: 100, from: { id: idOf(A(7004)), addr: A(7004) }, to: { id: idOf(A(7001)), addr: A(7001) }, keys: 12, destructive: true, drop: true }));
    // Then the shard is whole again: the split-off slot joins the promoted node, which hands it all back.
    expect(steps.map((s) => s.kind)).toEqual(["move-stray-keys", "migrate-slot", "replicate", "failover"]);
    expect(steps[1]).toMatchObject({ slot: 100, from: { addr: A(7001) }, to: { addr: A(7004) }, needs: [drop.id] });
    expect(steps[3]).toMatchObject({ replica: { addr: A(7001) }, master: { addr: A(7004) } });
    simulate(split(), steps);
  });
  it("are deleted before a move takes the holder's last slot (Redis then makes the holder a replica of the target, flushing its keys), while the other moves out of it need not wait", () => {
    // 7004 (the promoted holder) keeps only 10001-10922: the shard is made whole on 7001, and the move of 7004's last slot empties it.
    const o = splitShard(12, undefined, ["100-100", "5461-10000"], ["10001-10922"]);
    const { steps } = planSteps(want(), o, { history: earlier });
    const drop = steps.find((x) => x.kind === "move-stray-keys")!;
    const outOfHolder = steps.filter((x): x is Extract<Step, { kind: "migrate-slot" }> => x.kind === "migrate-slot" && x.from.addr === A(7004));
    expect(outOfHolder.map((x) => x.slot)).toEqual(Array.from({ length: 922 }, (_, i) => 10001 + i));
    expect(outOfHolder.at(-1)!.needs).toContain(drop.id);
    expect(outOfHolder.slice(0, -1).every((x) => !x.needs.includes(drop.id))).toBe(true);
    simulate(o, steps);
  });
  it("are refused when the replication ids do not show the promotion, or no plan moved the slot into that shard", () => {
    expect(() => planSteps(want(), split("other"), { history: earlier })).toThrow(/7004 holds 12 key\(s\) of slot 100/);
    expect(() => planSteps(want(), split())).toThrow(/--history THAT_PLAN\.json/);
  });
});

describe("balance by memory and capacity", () => {
  const withLoad = (o: ReturnType<typeof observed>, maxmemoryOf: (addr: string) => number) => {
    o.load = {
      by: "memory",
      measuredAt: "2026-12-02T00:00:00.000Z",
      method: "test",
      errorPercent: 0,
      slots: Array.from({ length: 16384 }, (_, s) => [s, 1, 1000, 0] as [number, number, number, number]),
      shards: Object.fromEntries(o.nodes.filter((n) => n.role === "master").map((n) => [n.id, { measuredOn: n.addr, keys: 5461, bytes: 5_461_000, maxmemory: maxmemoryOf(n.addr), usedMemory: 5_500_000 }])),
    };
    return o;
  };
  const three3 = () =>
    observed([
      { addr: A(7000), slots: ["0-5460"] },
      { addr: A(7001), slots: ["5461-10922"] },
      { addr: A(7002), slots: ["10923-16383"] },
    ]);
  // 7000 is pinned to 77 slots of 7002's: it gives all of its own away and takes those.
  const pinned = () => spec([{ master: A(7000), slots: [[10923, 10999]] }, { master: A(7001) }, { master: A(7002) }], { balanceBy: "memory", threshold: 5 });

  it("a master that gives and takes, with little room, takes a slot only after the moves out planned before it (here: all of them)", () => {
    const tight = (a: string) => (a === A(7000) ? Math.ceil((5_500_000 + 50_000) / 0.9) : 0);
    const { steps } = planSteps(pinned(), withLoad(three3(), tight));
    const outOf = steps.filter((s) => s.kind === "migrate-slot" && s.from.addr === A(7000)).map((s) => s.id);
    const into = steps.filter((s) => s.kind === "migrate-slot" && s.to.addr === A(7000));
    expect(outOf.length).toBe(5461);
    expect(into.length).toBe(77);
    for (const s of into) {
      const needs = new Set(s.needs);
      expect(outOf.filter((id) => !needs.has(id))).toEqual([]);
    }
    simulate(three3(), steps);
  });
  it("with room, its moves keep their usual order and needs", () => {
    const { steps } = planSteps(pinned(), withLoad(three3(), () => 0));
    const into = steps.filter((s) => s.kind === "migrate-slot" && s.to.addr === A(7000));
    expect(into.every((s) => s.needs.length < 10)).toBe(true);
  });
  it("an end state above capacity is refused, naming the master and the room it needs", () => {
    const small = (a: string) => (a === A(7001) ? 6_000_000 : 0);
    const s = spec([{ master: A(7000) }, { master: A(7001) }], { balanceBy: "memory", threshold: 5, allowReset: [] });
    expect(() => planSteps(s, withLoad(three3(), small), { allowMassRemoval: true })).toThrow(/127\.0\.0\.1:7001 would hold about [\d.]+ MiB after this plan .* more than 90% of its maxmemory 5\.7 MiB: it needs [\d.]+ MiB more room/);
  });
});
