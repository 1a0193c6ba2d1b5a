/**
 * `shardform import`: a spec of the live cluster, such that planning it reports no changes.
 * Shards are balanced by weight when the live distribution is within the threshold; otherwise
 * every shard's slots are pinned as they are.
 */
import { stringify } from "yaml";
import { imbalancePercent, weightedCounts } from "../planner/distribute.js";
import type { ObservedCluster } from "../observe/types.js";
import type { AccessSource } from "../plan/types.js";
import { SLOT_COUNT, countSlots, formatRange } from "../slots.js";
import { DEFAULT_THRESHOLD } from "./types.js";

export interface ImportOptions {
  seeds: string[];
  threshold?: number;
  /** Where the credentials and TLS files came from, written as the spec's auth and tls sections. */
  access?: AccessSource;
  /** Announced host -> the name to write instead (the user reached the cluster by that name). */
  hostNames?: Map<string, string>;
}

export function specFromTopology(o: ObservedCluster, opts: ImportOptions): string {
  const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
  const spell = (addr: string): string => {
    const i = addr.lastIndexOf(":");
    const host = addr.slice(0, i);
    return `${opts.hostNames?.get(host) ?? host}${addr.slice(i)}`;
  };
  const masters = o.nodes.filter((n) => n.role === "master");
  const counts = masters.map((m) => countSlots(m.slots));
  // A master without slots would be given a share by weight: pin the others so it stays empty.
  const balanced = !counts.includes(0) && imbalancePercent(counts, weightedCounts(SLOT_COUNT, masters.map(() => 1))) <= threshold;
  const shards = masters.map((m) => {
    const replicas = o.nodes.filter((n) => n.role === "replica" && n.masterId === m.id).map((n) => spell(n.addr));
    return {
      master: spell(m.addr),
      ...(replicas.length ? { replicas } : {}),
      ...(balanced || m.slots.length === 0 ? {} : { slots: m.slots.map(formatRange) }),
    };
  });
  const a = opts.access ?? {};
  const auth = a.passwordEnv || a.passwordFile || a.user
    ? { auth: { ...(a.user ? { user: a.user } : {}), ...(a.passwordEnv ? { passwordEnv: a.passwordEnv } : {}), ...(a.passwordFile ? { passwordFile: a.passwordFile } : {}) } }
    : {};
  const tls = a.tls ? { tls: { ...a.tls } } : {};
  const doc = {
    cluster: { seeds: opts.seeds, ...auth, ...tls, balance: { threshold } },
    shards,
  };
  const header =
    `# yaml-language-server: $schema=https://shardform.dev/schemas/cluster.schema.json\n` +
    `# Imported from the live cluster: ${o.nodes.length} nodes, ${masters.length} shards` +
    (balanced ? ", balanced by weight.\n" : `, slots pinned as they are (outside the ${threshold}% threshold).\n`);
  return header + stringify(doc, { flow: false, lineWidth: 0 });
}
