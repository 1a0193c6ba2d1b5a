/**
 * `shardform import`: a spec of the live cluster, such that planning it reports no changes.
 * Shards are balanced by weight when the live distribution is within the threshold; otherwise
 * every shard's slots are pinned as they are.
 */
import { stringify } from "yaml";
import { imbalancePercent, weightedCounts } from "../planner/distribute.js";
import type { ObservedCluster } from "../observe/types.js";
import { SLOT_COUNT, countSlots, formatRange } from "../slots.js";
import { DEFAULT_THRESHOLD } from "./types.js";

export interface ImportOptions {
  seeds: string[];
  threshold?: number;
  passwordEnv?: string;
  user?: string;
}

export function specFromTopology(o: ObservedCluster, opts: ImportOptions): string {
  const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
  const masters = o.nodes.filter((n) => n.role === "master");
  const counts = masters.map((m) => countSlots(m.slots));
  // A master without slots would be given a share by weight: pin the others so it stays empty.
  const balanced = !counts.includes(0) && imbalancePercent(counts, weightedCounts(SLOT_COUNT, masters.map(() => 1))) <= threshold;
  const shards = masters.map((m) => {
    const replicas = o.nodes.filter((n) => n.role === "replica" && n.masterId === m.id).map((n) => n.addr);
    return {
      master: m.addr,
      ...(replicas.length ? { replicas } : {}),
      ...(balanced || m.slots.length === 0 ? {} : { slots: m.slots.map(formatRange) }),
    };
  });
  const auth = opts.passwordEnv || opts.user ? { auth: { ...(opts.user ? { user: opts.user } : {}), ...(opts.passwordEnv ? { passwordEnv: opts.passwordEnv } : {}) } } : {};
  const doc = {
    cluster: { seeds: opts.seeds, ...auth, balance: { threshold } },
    shards,
  };
  const header =
    `# Schema: schemas/cluster.schema.json in the shardform package (yaml-language-server: add a $schema line).\n` +
    `# Imported from the live cluster: ${o.nodes.length} nodes, ${masters.length} shards` +
    (balanced ? ", balanced by weight.\n" : `, slots pinned as they are (outside the ${threshold}% threshold).\n`);
  return header + stringify(doc, { flow: false, lineWidth: 0 });
}
