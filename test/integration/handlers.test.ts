/**
 * Step handlers check the nodes they act on before acting: a node is its id, not its address. Each
 * refusal is driven on real nodes with a step that no longer matches them, and must change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeCluster } from "../../src/observe/observe.js";
import { fingerprint } from "../../src/observe/fingerprint.js";
import { NodeClient } from "../../src/redis/connect.js";
import { ExecCtx, DEFAULT_EXEC_OPTIONS } from "../../src/executor/context.js";
import { runUnit } from "../../src/executor/handlers.js";
import type { Step } from "../../src/plan/types.js";
import { ClusterChangedError } from "../../src/errors.js";
import { spawnSync } from "node:child_process";
import calculateSlot from "cluster-key-slot";
import { createCluster, startNodes, waitConsistent, type TestSandbox } from "../helpers/cluster.js";

// Ports 21800-21804 (bus 31800-31804): this file's own range.
const BASE = 21800;
let sb: TestSandbox;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
const ids = new Map<string, string>();

function ctx(): ExecCtx {
  const c = new ExecCtx({}, { ...DEFAULT_EXEC_OPTIONS, waitTimeoutMs: 3000 }, () => {});
  c.knownAddrs.push(a(0), a(1), a(2));
  return c;
}

async function refused(step: Step, message: RegExp): Promise<void> {
  const before = fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(3), a(4)] }));
  const c = ctx();
  try {
    const err = await runUnit({ kind: step.kind, steps: [step] }, c).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ClusterChangedError);
    expect((err as Error).message).toMatch(message);
  } finally {
    await c.closeAll();
  }
  expect(fingerprint(await observeCluster({ seeds: [a(0)], probe: [a(3), a(4)] }))).toBe(before);
}

beforeAll(async () => {
  sb = await startNodes(BASE, 5);
  await createCluster([a(0), a(1), a(2)], 0);
  for (const i of [0, 1, 2, 3, 4]) {
    const c = await NodeClient.connect(a(i));
    ids.set(a(i), String(await c.call("cluster", "myid")));
    await c.close();
  }
  // a(4) is a one-node cluster of its own holding 5 keys: what reset-node wipes.
  const c = await NodeClient.connect(a(4));
  await c.call("cluster", "addslotsrange", 0, 16383);
  for (let i = 0; i < 100; i++) {
    try {
      for (let k = 0; k < 5; k++) await c.call("set", `k${k}`, "v");
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await c.close();
});
afterAll(async () => {
  await sb?.stop();
});

const ref = (i: number, id = ids.get(a(i))!) => ({ id, addr: a(i) });

describe("handlers refuse a node that is not the plan's", () => {
  it("reset-node refuses another node id at the address", async () => {
    await refused({ id: "1-reset-node", needs: [], kind: "reset-node", node: ref(4, "f".repeat(40)), keys: 5, destructive: true }, /refusing to reset 127\.0\.0\.1:21804: it answers with node id [0-9a-f]{8}, but the plan resets ffffffff/);
  });

  it("reset-node refuses a node that holds more keys than the plan showed", async () => {
    await refused({ id: "1-reset-node", needs: [], kind: "reset-node", node: ref(4), keys: 1, destructive: true }, /refusing to reset 127\.0\.0\.1:21804: it holds 5 key\(s\), but the plan showed 1 to be wiped/);
  });

  it("reset-node refuses a member of the cluster", async () => {
    await refused({ id: "1-reset-node", needs: [], kind: "reset-node", node: ref(1), keys: 0, destructive: true }, /refusing to reset 127\.0\.0\.1:21801: 127\.0\.0\.1:2180\d lists it as a member of this cluster now/);
  });

  it("meet refuses a node that holds keys (safety rule 6), and changes nothing", async () => {
    await refused({ id: "1-meet", needs: [], kind: "meet", node: ref(4), via: ref(0) }, /refusing to meet 127\.0\.0\.1:21804: it holds 5 key\(s\)/);
  });

  it("forget-node refuses a node that owns slots", async () => {
    await refused({ id: "1-forget-node", needs: [], kind: "forget-node", node: ref(2), destructive: true }, /refusing to forget 127\.0\.0\.1:21802: it still owns slots/);
  });

  it("migrate-slot refuses a target that answers with another id", async () => {
    const o = await observeCluster({ seeds: [a(0)] });
    const slot = o.nodes.find((n) => n.addr === a(0))!.slots[0]![0];
    await refused(
      { id: "1-migrate-slot", needs: [], kind: "migrate-slot", slot, from: ref(0), to: ref(1, "e".repeat(40)), estKeys: 0 },
      /127\.0\.0\.1:21801 now answers with node id [0-9a-f]{8}, not eeeeeeee as in the plan: the node was replaced or reset/,
    );
  });

  it("replicate refuses a master that is not the plan's", async () => {
    await refused({ id: "1-replicate", needs: [], kind: "replicate", replica: ref(3), master: ref(0, "d".repeat(40)) }, /127\.0\.0\.1:21800 now answers with node id [0-9a-f]{8}, not dddddddd/);
  });
});

describe("migrate-slot hands a slot over until the target owns it", () => {
  it("a slot the target loses right after SETSLOT NODE (a claim with a higher epoch) is handed over again, with a note", async () => {
    const o = await observeCluster({ seeds: [a(0)] });
    const owned = o.nodes.find((n) => n.addr === a(0))!.slots[0]!;
    // An empty slot (the target refuses to give away a slot it holds keys of).
    let slot = -1;
    const src = await NodeClient.connect(a(0));
    for (let s = owned[0]; s <= owned[1] && slot < 0; s++) if (Number(await src.call("cluster", "countkeysinslot", s)) === 0) slot = s;
    await src.close();
    expect(slot).toBeGreaterThanOrEqual(0);
    const notes: string[] = [];
    const c = new ExecCtx({}, { ...DEFAULT_EXEC_OPTIONS, waitTimeoutMs: 10_000 }, (e) => {
      if (e.type === "note") notes.push(e.message);
    });
    c.knownAddrs.push(a(0), a(1), a(2));
    // Right after the target's SETSLOT NODE, the target is told the source owns the slot again: what a
    // ping from the source with a higher config epoch does.
    c.failpointHook = async (name) => {
      if (name !== "migrate:after-target-setslot") return;
      const t = await NodeClient.connect(a(1));
      await t.call("cluster", "setslot", slot, "node", ids.get(a(0))!);
      await t.close();
    };
    try {
      await runUnit({ kind: "migrate-slot", steps: [{ id: "1-migrate-slot", needs: [], kind: "migrate-slot", slot, from: ref(0), to: ref(1), estKeys: 0 }] }, c);
    } finally {
      await c.closeAll();
    }
    expect(notes.join("\n")).toMatch(new RegExp(`127\\.0\\.0\\.1:21801 lost slot\\(s\\) ${slot} right after SETSLOT NODE to a claim with a higher config epoch; bumping its epoch and handing them over again`));
    await waitConsistent([a(0), a(1), a(2)]);
    const after = await observeCluster({ seeds: [a(0)] });
    expect(after.disagreements).toEqual([]);
    expect(after.nodes.find((n) => n.addr === a(1))!.slots.some(([x, y]) => slot >= x && slot <= y)).toBe(true);
    expect(after.nodes.flatMap((n) => [...n.migrating, ...n.importing])).toEqual([]);
    const check = spawnSync("redis-cli", ["--cluster", "check", a(0)], { encoding: "utf8" });
    expect(check.stdout).toContain("[OK] All 16384 slots covered.");
    expect(check.stdout).not.toMatch(/\[ERR\]|\[WARNING\]/);
  });
});

describe("migrate-slot hands a slot over only once a replica of the target has its keys", () => {
  it("a replica of the target stopped right before the handover is waited for (WAIT 1): the target's SETSLOT NODE comes after it acknowledged", async () => {
    // a(3) becomes a(1)'s replica.
    const r = await NodeClient.connect(a(3));
    await r.call("cluster", "meet", "127.0.0.1", BASE);
    await waitConsistent([a(0), a(1), a(2), a(3)]);
    await r.call("cluster", "replicate", ids.get(a(1))!);
    for (let i = 0; i < 100 && !String(await r.call("info", "replication")).includes("master_link_status:up"); i++) await new Promise((res) => setTimeout(res, 100));
    await r.close();
    // 300 keys of one slot of a(0).
    const o = await observeCluster({ seeds: [a(0)] });
    const owned = o.nodes.find((n) => n.addr === a(0))!.slots.at(-1)!;
    let tag = 0;
    while (!(calculateSlot(`{w${tag}}`) >= owned[0] && calculateSlot(`{w${tag}}`) <= owned[1])) tag++;
    const slot = calculateSlot(`{w${tag}}`);
    const targetSlots = o.nodes.find((n) => n.addr === a(1))!.slots;
    let tt = 0;
    while (!targetSlots.some(([p, q]) => calculateSlot(`{t${tt}}`) >= p && calculateSlot(`{t${tt}}`) <= q)) tt++;
    const src = await NodeClient.connect(a(0));
    await src.pipeline(Array.from({ length: 300 }, (_, i) => ["set", `{w${tag}}:${i}`, "v"]));
    await src.close();
    let resumed = false;
    let resumedBeforeHandover: boolean | null = null;
    const c = new ExecCtx({}, { ...DEFAULT_EXEC_OPTIONS, waitTimeoutMs: 10_000 }, () => {});
    c.knownAddrs.push(a(0), a(1), a(2));
    c.failpointHook = async (name) => {
      // Once the keys are on the target, one more write reaches it and its replica stops at once, going
      // on 1.5 s later: the replica has not acknowledged that write when the handover could start.
      if (name === "migrate:before-replica-wait") {
        const t = await NodeClient.connect(a(1));
        await t.call("set", `{t${tt}}`, "1");
        await t.close();
        sb.pause(BASE + 3);
        setTimeout(() => {
          sb.resume(BASE + 3);
          resumed = true;
        }, 1500);
      }
      if (name === "migrate:after-target-setslot") resumedBeforeHandover = resumed;
    };
    try {
      await runUnit({ kind: "migrate-slot", steps: [{ id: "1-migrate-slot", needs: [], kind: "migrate-slot", slot, from: ref(0), to: ref(1), estKeys: 300 }] }, c);
    } finally {
      await c.closeAll();
      await new Promise((res) => setTimeout(res, 1600));
    }
    expect(resumedBeforeHandover).toBe(true);
    const rr = await NodeClient.connect(a(3));
    const onReplica = Number(await rr.call("cluster", "countkeysinslot", slot));
    await rr.close();
    expect(onReplica).toBe(300);
    await waitConsistent([a(0), a(1), a(2), a(3)]);
  });
});

describe("migrate-slot moves keys as the bytes they are", () => {
  it("keys and values of any bytes (CR LF, NUL, not UTF-8, 20 KiB names), more than one GETKEYSINSLOT pass, arrive byte for byte", async () => {
    const o = await observeCluster({ seeds: [a(0)] });
    const [lo, hi] = o.nodes.find((n) => n.addr === a(0))!.slots[0]!;
    let tag = "";
    for (let i = 0; !tag; i++) {
      const slot = calculateSlot(`bin${i}`);
      if (slot >= lo && slot <= hi) tag = `bin${i}`;
    }
    const slot = calculateSlot(tag);
    const odd = Buffer.from([0, 13, 10, 255, 254, 36, 42, 13, 10, 36, 45, 49]);
    const keys = Array.from({ length: 250 }, (_, i) =>
      Buffer.concat([Buffer.from(`{${tag}}`), odd, Buffer.from(String(i)), ...(i % 50 === 0 ? [Buffer.alloc(20 * 1024, i % 256)] : [])]),
    );
    const value = (i: number) => Buffer.concat([odd, Buffer.from(`v${i}`), odd]);
    const src = await NodeClient.connect(a(0));
    await src.pipelineBuffer(keys.map((k, i) => ["set", k, value(i)]));
    await src.close();
    const c = ctx();
    try {
      // 250 keys: three GETKEYSINSLOT passes of the default 100.
      await runUnit({ kind: "migrate-slot", steps: [{ id: "1-migrate-slot", needs: [], kind: "migrate-slot", slot, from: ref(0), to: ref(1), estKeys: 250 }] }, c);
    } finally {
      await c.closeAll();
    }
    const from = await NodeClient.connect(a(0));
    const to = await NodeClient.connect(a(1));
    try {
      expect(Number(await from.call("cluster", "countkeysinslot", slot))).toBe(0);
      expect(Number(await to.call("cluster", "countkeysinslot", slot))).toBe(250);
      const got = await to.pipelineBuffer(keys.map((k) => ["get", k]));
      got.forEach(([err, v], i) => {
        expect(err).toBeNull();
        expect(Buffer.compare(v as Buffer, value(i))).toBe(0);
      });
    } finally {
      await from.close();
      await to.close();
    }
    // Every member (an earlier case gave a(1) a replica).
    await waitConsistent(o.nodes.map((n) => n.addr));
    const check = spawnSync("redis-cli", ["--cluster", "check", a(0)], { encoding: "utf8" });
    expect(check.stdout).toContain("[OK] All 16384 slots covered.");
    expect(check.stdout).not.toMatch(/\[ERR\]|\[WARNING\]/);
  });
});
