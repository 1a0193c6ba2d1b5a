import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeCluster } from "../../src/observe/observe.js";
import { fingerprint } from "../../src/observe/fingerprint.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import calculateSlot from "cluster-key-slot";
import { populate, slotOwners, testKey, testKeySlot, verifyTestKeys } from "../../src/testdata/populate.js";
import { NodeClient } from "../../src/redis/connect.js";
import { runCli } from "../helpers/cli.js";
import { countSlots } from "../../src/slots.js";
import { createCluster, startNodes, type TestSandbox } from "../helpers/cluster.js";

// Ports 21000-21007 (bus 31000-31007): this file's own range.
const BASE = 21000;
let sb: TestSandbox;

beforeAll(async () => {
  sb = await startNodes(BASE, 8);
  await createCluster(sb.addrs.slice(0, 6), 1);
});
afterAll(async () => {
  await sb?.stop();
});

describe("observe on a real cluster", () => {
  it("discovers every member from one seed, with roles, slots and key counts", async () => {
    const o0 = await observeCluster({ seeds: [sb.addrs[0]!] });
    await populate(o0, { keys: 5000 });
    const o = await observeCluster({ seeds: [sb.addrs[0]!], probe: sb.addrs });
    expect(o.nodes).toHaveLength(6);
    const masters = o.nodes.filter((n) => n.role === "master");
    const replicas = o.nodes.filter((n) => n.role === "replica");
    expect(masters).toHaveLength(3);
    expect(replicas).toHaveLength(3);
    expect(masters.reduce((s, m) => s + countSlots(m.slots), 0)).toBe(16384);
    for (const r of replicas) expect(masters.map((m) => m.id)).toContain(r.masterId);
    expect(masters.reduce((s, m) => s + (m.keys ?? 0), 0)).toBe(5000);
    for (const n of o.nodes) {
      expect(n.reachable).toBe(true);
      expect(n.clusterState).toBe("ok");
      // Every line of its CLUSTER NODES agrees, so none is stored.
      expect(n.view).toEqual([]);
      expect(n.unknownMembers).toEqual([]);
    }
    expect(o.disagreements).toEqual([]);
    // the two spare nodes are probed as empty outsiders
    expect(o.outsiders.map((x) => [x.addr, x.state])).toEqual([
      [sb.addrs[6], "empty"],
      [sb.addrs[7], "empty"],
    ]);
    // Same cluster, same fingerprint, whichever seed is used; key counts do not count.
    const again = await observeCluster({ seeds: [sb.addrs[4]!], probe: sb.addrs });
    expect(fingerprint(again)).toBe(fingerprint(o));
  });

  it("a big pipeline (raw RESP on a connection of its own) answers what ioredis' pipeline answers, errors included", async () => {
    const c = await NodeClient.connect(sb.addrs[0]!, { readOnly: true });
    try {
      const cmds: (string | number)[][] = [];
      for (let s = 0; s < 16384; s++) cmds.push(["cluster", "countkeysinslot", s]);
      cmds.push(["cluster", "countkeysinslot", 99999], ["cluster", "getkeysinslot", 0, 3], ["memory", "usage", "no-such-key"], ["get", testKey("key:", 1)]);
      const viaIoredis = await c.pipeline(cmds);
      const raw = await c.bigPipeline(cmds);
      expect(raw.map(([e, v]) => [e?.message ?? null, v])).toEqual(viaIoredis.map(([e, v]) => [e?.message ?? null, v]));
      expect(raw[16384]![0]?.message).toMatch(/slot/i);
      // A read-only client's big pipeline is read-only too.
      await expect(c.bigPipeline([["set", "x", "1"]])).rejects.toThrow(/read-only connection/);
    } finally {
      await c.close();
    }
  });

  it("shows an open slot left by an interrupted move, on both sides", async () => {
    const o = await observeCluster({ seeds: [sb.addrs[0]!] });
    const [a, b] = o.nodes.filter((n) => n.role === "master");
    const slot = a!.slots[0]![0];
    const ca = await NodeClient.connect(a!.addr);
    const cb = await NodeClient.connect(b!.addr);
    try {
      await cb.call("cluster", "setslot", slot, "importing", a!.id);
      await ca.call("cluster", "setslot", slot, "migrating", b!.id);
      const o2 = await observeCluster({ seeds: [sb.addrs[0]!] });
      const a2 = o2.nodes.find((n) => n.id === a!.id)!;
      const b2 = o2.nodes.find((n) => n.id === b!.id)!;
      expect(a2.migrating).toEqual([{ slot, peerId: b!.id }]);
      expect(b2.importing).toEqual([{ slot, peerId: a!.id }]);
      expect(fingerprint(o2)).not.toBe(fingerprint(o));
    } finally {
      await cb.call("cluster", "setslot", slot, "stable");
      await ca.call("cluster", "setslot", slot, "stable");
      await ca.close();
      await cb.close();
    }
  });

  it("reports a member that cannot be reached instead of failing", async () => {
    await expect(observeCluster({ seeds: ["127.0.0.1:21099"] })).rejects.toThrow(/cannot reach 127.0.0.1:21099/);
  });

  it("populate writes keys over every master; --verify finds a missing and a changed key and exits 1", async () => {
    const seed = sb.addrs[0]!;
    const w = await runCli(["populate", "--seed", seed, "--keys", "3000", "--prefix", "pv:", "--value-size", "40"]);
    expect(w.stdout).toMatch(/^Wrote 3000 keys in [\d.]+ s/);
    expect(w.code).toBe(0);
    const ok = await runCli(["populate", "--seed", seed, "--keys", "3000", "--prefix", "pv:", "--value-size", "40", "--verify"]);
    expect(ok.stdout).toContain("Checked 3000 keys: 0 missing, 0 with a wrong value.");
    expect(ok.code).toBe(0);
    const owners = slotOwners(await observeCluster({ seeds: [seed] }));
    const gone = testKey("pv:", 17);
    const changed = testKey("pv:", 2999);
    for (const [key, cmd] of [[gone, ["del", gone]], [changed, ["set", changed, "not-the-value"]]] as const) {
      const c = await NodeClient.connect(owners[testKeySlot("pv:")(Number(key.slice(3)))]!);
      await c.call(...cmd);
      await c.close();
    }
    const bad = await runCli(["populate", "--seed", seed, "--keys", "3000", "--prefix", "pv:", "--value-size", "40", "--verify"]);
    expect(bad.stdout).toContain("Checked 3000 keys: 1 missing, 1 with a wrong value.");
    expect(bad.stdout).toContain(`missing: ${gone}`);
    expect(bad.stdout).toContain(`wrong:   ${changed}`);
    expect(bad.code).toBe(1);
  });

  it("populate --verify follows ASK while a slot is half moved, and MOVED after a move, finding every key", async () => {
    const seed = sb.addrs[0]!;
    expect((await runCli(["populate", "--seed", seed, "--keys", "20000", "--prefix", "ask:"])).code).toBe(0);
    const o = await observeCluster({ seeds: [seed] });
    const [a, b] = o.nodes.filter((n) => n.role === "master");
    // The slot of a(0)'s first range holding the most test keys goes half over to b: MIGRATING/IMPORTING, half its keys moved.
    const ca = await NodeClient.connect(a!.addr);
    const cb = await NodeClient.connect(b!.addr);
    let slot = a!.slots[0]![0];
    while (Number(await ca.call("cluster", "countkeysinslot", slot)) < 4) slot++;
    try {
      await cb.call("cluster", "setslot", slot, "importing", a!.id);
      await ca.call("cluster", "setslot", slot, "migrating", b!.id);
      const keys = (await ca.call("cluster", "getkeysinslot", slot, 2)) as string[];
      await ca.call("migrate", "127.0.0.1", Number(b!.addr.split(":")[1]), "", 0, 5000, "keys", ...keys);
      const r = await runCli(["populate", "--seed", seed, "--keys", "20000", "--prefix", "ask:", "--verify"]);
      expect(r.stdout).toContain("Checked 20000 keys: 0 missing, 0 with a wrong value.");
      expect(r.code).toBe(0);
      // now finish the move by hand: the snapshot taken before still sends those keys to a, which answers MOVED
      while (((await ca.call("cluster", "getkeysinslot", slot, 100)) as string[]).length > 0) {
        const rest = (await ca.call("cluster", "getkeysinslot", slot, 100)) as string[];
        await ca.call("migrate", "127.0.0.1", Number(b!.addr.split(":")[1]), "", 0, 5000, "keys", ...rest);
      }
      for (const c of [cb, ca]) await c.call("cluster", "setslot", slot, "node", b!.id);
      expect(await verifyTestKeys(o, { keys: 20000, prefix: "ask:" })).toMatchObject({ checked: 20000, missing: [], wrong: [] });
      // and back, so that the cluster is as it was
      await cb.call("cluster", "setslot", slot, "importing", a!.id).catch(() => undefined);
    } finally {
      await ca.close();
      await cb.close();
    }
  });

  it("check fails on keys held in a slot their node does not own, and plan refuses to guess which copy is right", async () => {
    const o = await observeCluster({ seeds: [sb.addrs[0]!] });
    const [a, b] = o.nodes.filter((n) => n.role === "master");
    // A key written into b for a slot a owns (as a move gone wrong leaves them): IMPORTING + ASKING, then the import is closed.
    const [lo, hi] = [...a!.slots].sort((x, y) => y[1] - y[0] - (x[1] - x[0]))[0]!;
    const slot = Math.floor((lo + hi) / 2);
    const cb = await NodeClient.connect(b!.addr);
    let key = "";
    for (let n = 0; !key; n++) if (calculateSlot(`stray${n}`) === slot) key = `stray${n}`;
    try {
      await cb.call("cluster", "setslot", slot, "importing", a!.id);
      await cb.pipeline([["asking"], ["set", key, "left-behind"]]);
      await cb.call("cluster", "setslot", slot, "stable");
      const r = await runCli(["check", "--seed", sb.addrs[0]!]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`${b!.addr} holds 1 key(s) of slot ${slot}, which ${a!.addr} owns`);
      expect(r.stdout).toMatch(/slot\(s\) have keys on a node that does not own them: clients cannot read those keys/);
      const spec = join(sb.dir, "strays.yaml");
      writeFileSync(spec, (await runCli(["import", "--seed", sb.addrs[0]!])).stdout);
      const p = await runCli(["plan", spec]);
      expect(p.code).toBe(1);
      expect(p.stderr).toMatch(new RegExp(`${b!.addr} holds 1 key\\(s\\) of slot ${slot}, which ${a!.addr} owns, so clients cannot read them\\. shardform does not guess which copy is right`));
    } finally {
      await cb.call("cluster", "setslot", slot, "importing", a!.id);
      await cb.pipeline([["asking"], ["del", key]]);
      await cb.call("cluster", "setslot", slot, "stable");
      await cb.close();
    }
    expect((await runCli(["check", "--seed", sb.addrs[0]!])).code).toBe(0);
  });
});
