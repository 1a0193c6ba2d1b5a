/**
 * Which protocol each slot move uses (`--migration auto|atomic|keys`). Pure.
 *  - atomic: the server moves the slots itself (Valkey 9+: CLUSTER MIGRATESLOTS, sent to the source):
 *    no ASK window, no key blocking its source, rolled back by the server when it fails;
 *  - keys: IMPORTING/MIGRATING, GETKEYSINSLOT + MIGRATE until empty, SETSLOT NODE everywhere.
 * auto picks atomic for every pair whose source and target both have it (so a cluster in the middle of
 * a rolling upgrade mixes both), keys otherwise; a move that finishes a slot an interrupted key-by-key
 * move left open stays key by key.
 */
import type { ObservedCluster } from "../observe/types.js";
import type { Step } from "../plan/types.js";

export type Migration = "auto" | "atomic" | "keys";

/** Whether a server (INFO server, as observe names it: "valkey 9.1.2") migrates slots itself. */
export function hasAtomicMigration(server: string | undefined): boolean {
  const m = /^valkey (\d+)\./.exec(server ?? "");
  return m !== null && Number(m[1]) >= 9;
}

/** Marks the plan's slot moves atomic where `mode` allows and both ends can; returns problems for `atomic` where they cannot. */
export function chooseMigration(steps: Step[], observed: ObservedCluster, mode: Migration): string[] {
  const server = new Map<string, string | undefined>([...observed.nodes.map((n) => [n.id, n.server] as const), ...observed.outsiders.filter((x) => x.id).map((x) => [x.id!, x.server] as const)]);
  const problems = new Set<string>();
  for (const s of steps) {
    if (s.kind !== "migrate-slot" || mode === "keys") continue;
    const open = s.reason?.startsWith("finish the interrupted move") ?? false;
    const both = hasAtomicMigration(server.get(s.from.id)) && hasAtomicMigration(server.get(s.to.id));
    if (both && !open) s.atomic = true;
    else if (mode === "atomic") {
      const lacking = [s.from, s.to].filter((r) => !hasAtomicMigration(server.get(r.id))).map((r) => `${r.addr} (${server.get(r.id) ?? "server unknown"})`);
      problems.add(
        open
          ? `--migration atomic: slot ${s.slot} is half moved key by key (an interrupted move): plan with --migration auto to finish it key by key`
          : `--migration atomic: ${lacking.join(" and ")} cannot migrate slots itself (Valkey 9 or later can): plan with --migration auto or keys`,
      );
    }
  }
  // Key by key, GETKEYSINSLOT and MIGRATE see database 0 only: keys in the others would stay behind.
  const inOthers = new Map(observed.nodes.filter((n) => n.otherDatabases?.length).map((n) => [n.id, n]));
  for (const s of steps) {
    const n = s.kind === "migrate-slot" && !s.atomic ? inOthers.get(s.from.id) : undefined;
    if (!n) continue;
    problems.add(
      `${n.addr} holds keys in database(s) ${n.otherDatabases!.join(", ")} besides 0, and a key-by-key slot move sees database 0 only: they would stay behind. ` +
        `Move slots with the server's own migration, which takes every database (Valkey 9: --migration atomic, or auto where both ends have it), or empty those databases first`,
    );
  }
  return [...problems];
}
