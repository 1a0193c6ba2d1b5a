/** check's health report (pure: an observed cluster in, the report out). */
import { describe, expect, it } from "vitest";
import { healthReport } from "../../src/check/report.js";
import { A, observed } from "../helpers/build.js";

describe("a replica in its first sync", () => {
  const syncing = (totalBytes: number) => {
    const o = observed([
      { addr: A(7000), slots: ["0-5460"], replicas: [A(7003)] },
      { addr: A(7001), slots: ["5461-10922"] },
      { addr: A(7002), slots: ["10923-16383"] },
    ]);
    Object.assign(o.nodes.find((n) => n.addr === A(7003))!, { masterLinkUp: false, syncing: { readBytes: 1 << 20, totalBytes } });
    return healthReport(o);
  };
  it("is its own state, with its progress, not a broken link: a warning, and the cluster is healthy", () => {
    const r = syncing(4 << 20);
    expect(r.healthy).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.warnings).toContainEqual(`${A(7003)}: first sync with ${A(7000)} in progress: 1.0 MiB of 4.0 MiB (25%); it serves no reads until it ends, and check passes once it has`);
  });
  it("says so when the master streams its data disklessly (its size unknown)", () => {
    expect(syncing(-1).warnings[0]).toMatch(/1\.0 MiB so far \(the master streams its data disklessly/);
  });
  it("a link that is down with no sync is still a problem", () => {
    const o = observed([
      { addr: A(7000), slots: ["0-16383"], replicas: [A(7003)] },
    ]);
    o.nodes.find((n) => n.addr === A(7003))!.masterLinkUp = false;
    const r = healthReport(o);
    expect(r.healthy).toBe(false);
    expect(r.problems).toContain(`${A(7003)}: replication link to its master is down`);
  });
});
