/**
 * Before the first change (and before the lease, which needs named connections): does the ACL user
 * have every command this plan needs, on every node apply will talk to?
 *  - Where the server has ACL DRYRUN (Redis 7+, Valkey) and the user may run it, each permission is
 *    asked of the server with ACL DRYRUN: nothing is executed.
 *  - Elsewhere (Redis 6.2, or a user without acl|dryrun), each command is sent in a form that the
 *    server refuses before it acts (a node id that does not exist, a port of 0, a syntax error, a key
 *    that does not exist), so a NOPERM reply means the permission is missing and any other reply that
 *    it is granted. (CLUSTER BUMPEPOCH has no harmless form; it goes with the other CLUSTER rights.)
 */
import { PermissionError } from "../errors.js";
import type { Plan, StepKind } from "../plan/types.js";
import { describe } from "../redis/errors.js";
import type { NodeAddr } from "../redis/node-key.js";
import { mapLimit } from "../util/limit.js";
import type { ExecCtx } from "./context.js";

const NO_NODE = "0".repeat(40);
const PROBE_KEY = "shardform:permission-probe:no-such-key";

/** ACL name of each permission, and a command that uses it without acting. */
const PROBES: Record<string, (string | number)[]> = {
  "cluster|meet": ["cluster", "meet", "0.0.0.0", 0],
  "cluster|addslotsrange": ["cluster", "addslotsrange", 1, 0],
  "cluster|addslots": ["cluster", "addslots", 99999],
  "cluster|replicate": ["cluster", "replicate", NO_NODE],
  "cluster|setslot": ["cluster", "setslot", 0, "node", NO_NODE],
  "cluster|failover": ["cluster", "failover", "no-such-option"],
  "cluster|forget": ["cluster", "forget", NO_NODE],
  "cluster|reset": ["cluster", "reset", "no-such-option"],
  "cluster|getkeysinslot": ["cluster", "getkeysinslot", 0, 0],
  "cluster|countkeysinslot": ["cluster", "countkeysinslot", 0],
  migrate: ["migrate", "127.0.0.1", 1, PROBE_KEY, 0, 1],
  dump: ["dump", PROBE_KEY],
  del: ["del", PROBE_KEY],
  wait: ["wait", 0, -1],
  "cluster|getslotmigrations": ["cluster", "getslotmigrations"],
  "cluster|migrateslots": ["cluster", "migrateslots", "slotsrange", 0, 0, "node", "0".repeat(40)],
  flushall: ["flushall", "no-such-option"],
  dbsize: ["dbsize"],
  "client|id": ["client", "id"],
  "client|list": ["client", "list", "id", 0],
  "client|setname": ["client", "setname", "shardform-apply-probe"],
};

/** What the in-cluster lease needs (named connections), for any plan. */
const LEASE = ["client|id", "client|list", "client|setname"];

const NEEDS: Record<StepKind, string[]> = {
  meet: ["cluster|meet"],
  "add-slots": ["cluster|addslotsrange"],
  replicate: ["cluster|replicate", "dbsize"],
  "migrate-slot": ["cluster|setslot", "cluster|getkeysinslot", "cluster|countkeysinslot", "migrate", "dump", "wait"],
  failover: ["cluster|failover"],
  "move-stray-keys": ["cluster|setslot", "cluster|getkeysinslot", "cluster|countkeysinslot", "migrate", "dump", "del"],
  "forget-node": ["cluster|forget", "cluster|reset", "dbsize"],
  "reset-node": ["flushall", "cluster|reset", "dbsize"],
};

export async function probePermissions(plan: Plan, nodes: NodeAddr[], ctx: ExecCtx): Promise<void> {
  const atomic = plan.steps.some((s) => s.kind === "migrate-slot" && s.atomic) ? ["cluster|migrateslots", "cluster|getslotmigrations"] : [];
  const needed = [...new Set([...LEASE, ...atomic, ...plan.steps.flatMap((s) => NEEDS[s.kind])])].sort();
  if (needed.length === 0) return;
  const missing = new Map<string, Set<NodeAddr>>();
  const user = ctx.access.credentials?.user ?? "default";
  await mapLimit(nodes, 16, async (addr) => {
    const c = await ctx.conn(addr);
    // ACL DRYRUN answers OK for a permitted command and a sentence for a refused one; an error means it cannot be used here.
    const [dryErr] = (await c.pipeline([["acl", "dryrun", user, "ping"]]))[0]!;
    const dry = !dryErr;
    const res = await c.pipeline(needed.map((p) => (dry ? ["acl", "dryrun", user, ...PROBES[p]!] : PROBES[p]!)));
    res.forEach(([err, reply], k) => {
      let perm = needed[k]!;
      const msg = err ? describe(err) : dry && reply !== "OK" ? `NOPERM ${String(reply)}` : "";
      // A server without ADDSLOTSRANGE (Redis 6.2) uses ADDSLOTS: that is the permission to have.
      if (perm === "cluster|addslotsrange" && /unknown subcommand/i.test(msg)) return;
      if (!/^NOPERM/.test(msg)) return;
      if (perm === "cluster|addslotsrange") perm = "cluster|addslotsrange (or cluster|addslots)";
      const set = missing.get(perm) ?? new Set<NodeAddr>();
      set.add(addr);
      missing.set(perm, set);
    });
  });
  if (missing.size === 0) return;
  const list = [...missing].map(([perm, on]) => `${perm} (on ${[...on].slice(0, 3).join(", ")}${on.size > 3 ? ", ..." : ""})`);
  const firstNode = [...[...missing.values()][0]!][0]!;
  throw new PermissionError(
    firstNode,
    `ACL user "${user}" lacks permissions this plan needs: ${list.join("; ")}. Nothing was changed. ` +
      `Run apply as a user that may change the cluster (--user NAME, or the spec's auth.user; the README's "ACL users" section has one), not a read-only one. ` +
      `Only if "${user}" is meant to apply, grant them on every node: ACL SETUSER ${user} ${[...missing.keys()].map((p) => `+${p.split(" ")[0]}`).join(" ")}.`,
  );
}
