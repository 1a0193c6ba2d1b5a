/** The safety rules (src/safety/rules.ts) as pure functions over what nodes report. */
import { describe, expect, it } from "vitest";
import type { NodeEntry } from "../../src/redis/cluster-nodes.js";
import { busyKeyWinner, entriesOf, keyCount, pastMoves, shardServer, shardSwaps, slotsClaimants, staleCopies, staleCopiesGone, strayOrigin, withRenames, withSwaps } from "../../src/safety/rules.js";
import type { ObservedCluster } from "../../src/observe/types.js";
import type { Step } from "../../src/plan/types.js";

const id = (c: string): string => c.repeat(40);
const [M, R, T, X] = [id("a"), id("b"), id("c"), id("d")];
const addr: Record<string, string> = { [M]: "10.0.0.1:7000", [R]: "10.0.0.2:7000", [T]: "10.0.0.3:7000", [X]: "10.0.0.4:7000" };

function e(node: string, over: Partial<NodeEntry> = {}): NodeEntry {
  return { id: node, addr: addr[node]!, busPort: 17000, role: "master", masterId: null, flags: [], configEpoch: 1, linkConnected: true, slots: [], migrating: [], importing: [], ...over };
}
const mine = (n: NodeEntry): NodeEntry => ({ ...n, flags: ["myself", ...n.flags] });
const M_REF = { id: M, addr: addr[M]! };
const replicasOfM = new Set([R]);

describe("shardServer: who serves a shard's data now (rule 3)", () => {
  const healthy = [e(M, { slots: [[0, 99]] }), e(R, { role: "replica", masterId: M }), e(T, { slots: [[100, 16383]] })];

  it("the node itself while it is a master that no member has replaced", () => {
    expect(shardServer(M_REF, replicasOfM, mine(healthy[0]!), [healthy])).toEqual({ kind: "self" });
  });

  it("its promoted replica, when its own view says it follows that replica", () => {
    const own = mine(e(M, { role: "replica", masterId: R }));
    expect(shardServer(M_REF, replicasOfM, own, [[own, e(R, { slots: [[0, 99]] })]])).toEqual({ kind: "failed-over", to: { id: R, addr: addr[R] } });
  });

  it("its promoted replica, when it does not answer and the members list that replica as a master with its slots", () => {
    const view = [e(M, { flags: ["fail"] }), e(R, { slots: [[0, 99]] }), mine(e(T, { slots: [[100, 16383]] }))];
    expect(shardServer(M_REF, replicasOfM, null, [view])).toEqual({ kind: "failed-over", to: { id: R, addr: addr[R] } });
  });

  it("not the node's word when it still says master (paused, just resumed) while the members promoted its replica", () => {
    const own = mine(e(M, { slots: [[0, 99]] }));
    const view = [e(M, { flags: ["fail"] }), e(R, { slots: [[0, 99]] })];
    expect(shardServer(M_REF, replicasOfM, own, [view])).toEqual({ kind: "failed-over", to: { id: R, addr: addr[R] } });
  });

  it("nothing to move from a master that gave away its last slot and follows the new owner", () => {
    const own = mine(e(M, { role: "replica", masterId: T }));
    expect(shardServer(M_REF, replicasOfM, own, [[own]])).toEqual({ kind: "merged", into: T });
  });

  it("waits while it does not answer and no replica has taken over", () => {
    const view = [e(M, { flags: ["pfail"], slots: [[0, 99]] }), e(R, { role: "replica", masterId: M })];
    expect(shardServer(M_REF, replicasOfM, null, [view]).kind).toBe("waiting");
  });

  it("never takes a node of another shard as the promoted one", () => {
    const view = [e(M, { flags: ["fail"] }), e(X, { slots: [[0, 99]] })];
    expect(shardServer(M_REF, replicasOfM, null, [view]).kind).toBe("waiting");
  });
});

describe("slotsClaimants: whose keys must be counted before a handover (rule 2)", () => {
  const slotClaimants = (slot: number, target: string, views: NodeEntry[][], selves: ReadonlyMap<string, NodeEntry>): string[] => slotsClaimants([slot], target, views, selves).get(slot)!;
  const selves = new Map([
    [M, e(M, { slots: [[0, 99]] })],
    [R, e(R, { role: "replica", masterId: M })],
    [T, e(T)],
    [X, e(X, { slots: [[100, 200]] })],
  ]);

  it("the owner in any member's view, the target excepted", () => {
    expect(slotClaimants(5, T, [[e(M, { slots: [[0, 99]] })], [e(X, { slots: [[0, 10]] })]], selves).sort()).toEqual([M, X].sort());
  });

  it("a node with the slot open (MIGRATING, or the peer of an IMPORTING)", () => {
    const v = [e(X, { migrating: [{ slot: 5, peerId: T }] }), e(T, { importing: [{ slot: 5, peerId: X }] })];
    expect(slotClaimants(5, T, [v], selves)).toEqual([X]);
  });

  it("a replica stands for its master (its keys are its master's copy), and a target's own shard is not counted", () => {
    expect(slotClaimants(5, T, [[e(R, { migrating: [{ slot: 5, peerId: T }] })]], selves)).toEqual([M]);
    expect(slotClaimants(5, M, [[e(R, { migrating: [{ slot: 5, peerId: T }] })]], selves)).toEqual([]);
  });

  it("for a window's slots at once, each slot's the same as alone", () => {
    const views = [
      [e(M, { slots: [[0, 99]], migrating: [{ slot: 5, peerId: T }, { slot: 6, peerId: T }] }), e(T, { importing: [{ slot: 5, peerId: M }, { slot: 150, peerId: X }] })],
      [e(X, { slots: [[100, 200]] }), e(R, { migrating: [{ slot: 150, peerId: T }] })],
      [e(X, { slots: [[0, 10]] })],
    ];
    const slots = [5, 6, 7, 50, 150, 300];
    const all = slotsClaimants(slots, T, views, selves);
    expect([...all.keys()]).toEqual(slots);
    for (const s of slots) expect(all.get(s)!.sort()).toEqual(slotClaimants(s, T, views, selves).sort());
    expect(all.get(150)!.sort()).toEqual([M, X].sort());
    expect(all.get(300)).toEqual([]);
  });
});

describe("keyCount: which answers prove a slot empty (rule 1)", () => {
  it("only a master's, and not while it loads", () => {
    expect(keyCount(e(M), false, 0)).toEqual({ keys: 0 });
    expect(keyCount(e(M), false, 3)).toEqual({ keys: 3 });
    expect(keyCount(e(M, { role: "replica", masterId: R }), false, 0)).toHaveProperty("unusable", expect.stringMatching(/replica now/));
    expect(keyCount(e(M), true, 0)).toHaveProperty("unusable", expect.stringMatching(/loading/));
    expect(keyCount(undefined, false, 0)).toHaveProperty("unusable", expect.stringMatching(/does not answer/));
    expect(keyCount(e(M), false, new Error("LOADING Redis is loading the dataset in memory"))).toHaveProperty("unusable", expect.stringMatching(/^LOADING/));
  });
});

describe("shardSwaps and withSwaps: a failover inside a shard is a change of roles (rule 4)", () => {
  const expected = new Map([
    [M, { id: M, role: "master" as const, masterId: null }],
    [R, { id: R, role: "replica" as const, masterId: M }],
    [X, { id: X, role: "replica" as const, masterId: M }],
    [T, { id: T, role: "master" as const, masterId: null }],
  ]);

  it("finds M -> R when R, a replica of M, is a master and M follows it", () => {
    const live = [
      { id: M, role: "replica" as const, masterId: R },
      { id: R, role: "master" as const, masterId: null },
      { id: T, role: "master" as const, masterId: null },
    ];
    const swaps = shardSwaps(expected, live, new Map());
    expect([...swaps]).toEqual([[M, R]]);
    const { nodes, owner } = withSwaps(expected, [M, T, null], swaps);
    expect(owner).toEqual([R, T, null]);
    expect(nodes.get(R)).toMatchObject({ role: "master", masterId: null });
    expect(nodes.get(M)).toMatchObject({ role: "replica", masterId: R });
    expect(nodes.get(X)).toMatchObject({ role: "replica", masterId: R });
    expect(expected.get(M)!.role).toBe("master"); // pure
  });

  it("finds none when M follows a master of another shard", () => {
    const live = [
      { id: M, role: "replica" as const, masterId: T },
      { id: T, role: "master" as const, masterId: null },
    ];
    expect(shardSwaps(expected, live, new Map()).size).toBe(0);
  });
});

describe("entriesOf: what keeps a removed node in a member's table (rule 5)", () => {
  const gone = { id: "g".repeat(40), addr: "127.0.0.1:7006" };
  it("its own entry, and a handshake at its address (random id until it answers), but not another node", () => {
    const view: NodeEntry[] = [
      mine(e(M)),
      { ...e(X), id: gone.id, addr: gone.addr, flags: ["fail"] },
      { ...e(X), id: id("h"), addr: gone.addr, flags: ["handshake"] },
      { ...e(X), id: id("x"), addr: "127.0.0.1:7007", flags: ["handshake"] },
    ];
    expect(entriesOf(view, gone).map((e) => e.id)).toEqual([gone.id, id("h")]);
    expect(entriesOf(view.slice(0, 1), gone)).toEqual([]);
  });
});

describe("withRenames: the steps after a HARD reset name the node by its new id (rule 7)", () => {
  it("renames every whole id, in order (a second reset of the same node chains), and leaves other text alone", () => {
    const step = { kind: "replicate", replica: { id: M, addr: addr[M]! }, master: { id: R, addr: addr[R]! }, reason: `${M.slice(0, 8)} follows` };
    expect(withRenames(step, { [M]: T })).toEqual({ ...step, replica: { id: T, addr: addr[M]! } });
    expect(withRenames(step, { [M]: T, [T]: X }).replica.id).toBe(X);
    expect(withRenames(step, {})).toBe(step);
    // an id that merely starts like another is not touched
    expect(withRenames({ id: `${M}ff` }, { [M]: T })).toEqual({ id: `${M}ff` });
  });
});

describe("busyKeyWinner: a key on both ends of a move (rule 8)", () => {
  it("the source's copy while the slot is MIGRATING on it toward the target (clients read that one); otherwise nobody can tell", () => {
    expect(busyKeyWinner(true)).toBe("source");
    expect(busyKeyWinner(false)).toBeNull();
  });
});

describe("strayOrigin: keys left behind by a known move (rule 9)", () => {
  // M (replica R) moved slot 7 to T; X joins T's shard by a replicate step of the same plan.
  const snapshot = { nodes: [{ id: R, role: "replica", masterId: M }] } as unknown as ObservedCluster;
  const steps = [
    { id: "1-replicate", needs: [], kind: "replicate", replica: { id: X, addr: addr[X]! }, master: { id: T, addr: addr[T]! } },
    { id: "2-migrate-slot", needs: ["1-replicate"], kind: "migrate-slot", slot: 7, from: M_REF, to: { id: T, addr: addr[T]! }, estKeys: 3 },
  ] as Step[];
  const moves = pastMoves({ observed: { snapshot }, steps });

  it("knows each move's shards: the plan's masters with their replicas, those of the snapshot and those the plan attaches", () => {
    expect(moves).toEqual([{ slot: 7, from: [M, R], to: [T, X] }]);
  });
  it("explains keys on the source's shard (its promoted replica too) while the target's shard owns the slot", () => {
    expect(strayOrigin(R, T, 7, moves)).toEqual(moves[0]);
    expect(strayOrigin(M, X, 7, moves)).toEqual(moves[0]);
  });
  it("explains nothing else: another slot, another holder, another owner", () => {
    expect(strayOrigin(R, T, 8, moves)).toBeNull();
    expect(strayOrigin(T, M, 7, moves)).toBeNull();
    expect(strayOrigin(R, id("e"), 7, moves)).toBeNull();
  });
});

describe("staleCopies: a shard split by a failover (rule 9)", () => {
  const moves = [{ slot: 7, from: [M], to: [T, R] }];
  it("the holder's keys are stale copies when it was promoted from the owner's data (replId2) and a known move took the slot into their shard", () => {
    expect(staleCopies({ id: R, replId2: "t1" }, { id: T, replId: "t1" }, 7, moves)).toEqual(moves[0]);
  });
  it("nothing else: other replication ids, no replId2, another slot, a move into another shard", () => {
    expect(staleCopies({ id: R, replId2: "t0" }, { id: T, replId: "t1" }, 7, moves)).toBeNull();
    expect(staleCopies({ id: R }, { id: T, replId: "t1" }, 7, moves)).toBeNull();
    expect(staleCopies({ id: R, replId2: "t1" }, { id: T, replId: "t1" }, 8, moves)).toBeNull();
    expect(staleCopies({ id: R, replId2: "t1" }, { id: T, replId: "t1" }, 7, [{ slot: 7, from: [M], to: [T] }])).toBeNull();
  });
  it("none is left once the holder follows the owner (it holds the owner's data); not while it is a master, nor as a replica of another node (not this rule's case)", () => {
    expect(staleCopiesGone({ role: "replica", masterId: T }, T)).toBe(true);
    expect(staleCopiesGone({ role: "master", masterId: null }, T)).toBe(false);
    expect(staleCopiesGone({ role: "replica", masterId: M }, T)).toBe(false);
  });
});
