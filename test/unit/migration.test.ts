/** Which protocol slot moves use (src/planner/migration.ts), and the server's migration list (CLUSTER GETSLOTMIGRATIONS). */
import { describe, expect, it } from "vitest";
import { chooseMigration, hasAtomicMigration } from "../../src/planner/migration.js";
import { parseSlotMigrations } from "../../src/executor/steps/migrate-atomic.js";
import { planSteps } from "../../src/planner/plan.js";
import { PlanningError } from "../../src/errors.js";
import { A, observed, spec } from "../helpers/build.js";

const withServers = (server: (addr: string) => string) => {
  const o = observed(
    [
      { addr: A(7000), slots: ["0-8191"] },
      { addr: A(7001), slots: ["8192-16383"] },
    ],
    [A(7002)],
  );
  for (const n of o.nodes) n.server = server(n.addr);
  for (const x of o.outsiders) x.server = server(x.addr);
  return o;
};
const three = spec([{ master: A(7000) }, { master: A(7001) }, { master: A(7002) }]);

describe("migration protocol", () => {
  it("knows which servers migrate slots themselves", () => {
    expect(hasAtomicMigration("valkey 9.1.2")).toBe(true);
    expect(hasAtomicMigration("valkey 10.0.0")).toBe(true);
    expect(hasAtomicMigration("valkey 8.0.1")).toBe(false);
    expect(hasAtomicMigration("redis 7.0.15")).toBe(false);
    expect(hasAtomicMigration(undefined)).toBe(false);
  });
  it("auto: atomic where both ends have it, key by key elsewhere (a rolling upgrade mixes both)", () => {
    const all9 = planSteps(three, withServers(() => "valkey 9.1.2")).steps.filter((s) => s.kind === "migrate-slot");
    expect(all9.every((s) => s.kind === "migrate-slot" && s.atomic)).toBe(true);
    const mixed = planSteps(three, withServers((a) => (a === A(7001) ? "valkey 8.0.1" : "valkey 9.1.2"))).steps;
    const by = (from: string) => mixed.filter((s) => s.kind === "migrate-slot" && s.from.addr === from);
    expect(by(A(7000)).every((s) => s.kind === "migrate-slot" && s.atomic)).toBe(true);
    expect(by(A(7001)).some((s) => s.kind === "migrate-slot" && s.atomic)).toBe(false);
  });
  it("keys: never atomic; atomic: refused where a pair lacks it, naming the server", () => {
    expect(planSteps(three, withServers(() => "valkey 9.1.2"), { migration: "keys" }).steps.some((s) => s.kind === "migrate-slot" && s.atomic)).toBe(false);
    const run = () => planSteps(three, withServers((a) => (a === A(7001) ? "redis 7.0.15" : "valkey 9.1.2")), { migration: "atomic" });
    expect(run).toThrow(PlanningError);
    expect(run).toThrow(/--migration atomic: 127\.0\.0\.1:7001 \(redis 7\.0\.15\) cannot migrate slots itself \(Valkey 9 or later can\)/);
  });
  it("a slot half moved key by key is finished key by key", () => {
    const o = withServers(() => "valkey 9.1.2");
    o.nodes[0]!.migrating = [{ slot: 5, peerId: o.nodes[1]!.id }];
    o.nodes[1]!.importing = [{ slot: 5, peerId: o.nodes[0]!.id }];
    const steps = planSteps(three, o).steps;
    expect(steps[0]).toMatchObject({ kind: "migrate-slot", slot: 5, reason: expect.stringMatching(/interrupted/) });
    expect(steps[0]).not.toHaveProperty("atomic");
    expect(chooseMigration(steps, o, "atomic")).toEqual(["--migration atomic: slot 5 is half moved key by key (an interrupted move): plan with --migration auto to finish it key by key"]);
  });
});

describe("keys in databases other than 0", () => {
  it("refuse key-by-key moves out of their node, and pass with the server's own migration", () => {
    const o = withServers(() => "valkey 9.1.2");
    o.nodes[0]!.otherDatabases = [1, 3];
    const keys = () => planSteps(three, o, { migration: "keys" });
    expect(keys).toThrow(/127\.0\.0\.1:7000 holds keys in database\(s\) 1, 3 besides 0, and a key-by-key slot move sees database 0 only: they would stay behind/);
    expect(planSteps(three, o).steps.filter((s) => s.kind === "migrate-slot" && s.from.addr === A(7000)).every((s) => s.kind === "migrate-slot" && s.atomic)).toBe(true);
  });
});

describe("parseSlotMigrations", () => {
  it("reads GETSLOTMIGRATIONS as Valkey 9 answers it", () => {
    const reply = [["name", "e908fe95", "operation", "EXPORT", "slot_ranges", "0-99 200-200", "target_node", "t", "source_node", "s", "create_time", "1", "last_update_time", "7", "state", "success", "message", ""]];
    expect(parseSlotMigrations(reply)).toEqual([{ name: "e908fe95", operation: "EXPORT", ranges: [[0, 99], [200, 200]], target: "t", source: "s", state: "success", message: "", updated: 7 }]);
    expect(parseSlotMigrations(null)).toEqual([]);
  });
});
