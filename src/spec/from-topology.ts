/**
 * `shardform import`: a spec of the live cluster, such that planning it reports no changes.
 * Shards are balanced by weight when the live distribution is within the threshold; otherwise
 * every shard's slots are pinned as they are.
 */
import { stringify } from "yaml";
import { equalShareImbalance, imbalancePercent, weightedCounts } from "../util/shares.js";
import type { ObservedCluster } from "../observe/types.js";
import type { AccessSource } from "../plan/types.js";
import { SLOT_COUNT, countSlots, formatRange } from "../slots.js";
import { formatSpec } from "./format.js";
import { DEFAULT_LOAD_THRESHOLD, DEFAULT_THRESHOLD } from "./types.js";

export interface ImportOptions {
  seeds: string[];
  threshold?: number;
  /** balance.by to write (default slots); keys and memory are judged by DBSIZE and used_memory_dataset. */
  by?: "slots" | "keys" | "memory" | "cpu";
  /** Where the credentials and TLS files came from, written as the spec's auth and tls sections. */
  access?: AccessSource;
  /** Announced host -> the name to write instead (the user reached the cluster by that name). */
  hostNames?: Map<string, string>;
  /** The $schema reference in the header (default: the schema's path relative to the current directory). */
  schemaRef?: string;
}

export function specFromTopology(o: ObservedCluster, opts: ImportOptions): string {
  const by = opts.by ?? "slots";
  const threshold = opts.threshold ?? (by === "slots" ? DEFAULT_THRESHOLD : DEFAULT_LOAD_THRESHOLD);
  // A node's name: the one the user reached the cluster by, else the hostname it announces (masters and
  // replicas alike), else its address.
  const spell = (n: { addr: string; hostname?: string }): string => {
    const i = n.addr.lastIndexOf(":");
    const host = n.addr.slice(0, i);
    return `${opts.hostNames?.get(host) ?? n.hostname ?? host}${n.addr.slice(i)}`;
  };
  const masters = o.nodes.filter((n) => n.role === "master");
  const counts = masters.map((m) => countSlots(m.slots));
  // A master without slots would be given a share by weight: pin the others so it stays empty.
  // What is balanced: slot counts, or (by keys, memory) what the masters hold; by cpu only a plan's
  // measurement over a load window can tell, so slot counts decide here.
  const held = by === "keys" ? masters.map((m) => m.keys ?? 0) : by === "memory" ? masters.map((m) => m.memoryDataset ?? 0) : null;
  const balanced = !counts.includes(0) && (held ? equalShareImbalance(held) <= threshold : imbalancePercent(counts, weightedCounts(SLOT_COUNT, masters.map(() => 1))) <= threshold);
  const shards = masters.map((m) => {
    const replicas = o.nodes.filter((n) => n.role === "replica" && n.masterId === m.id).map((n) => spell(n));
    return {
      master: spell(m),
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
    cluster: { seeds: opts.seeds, ...auth, ...tls, balance: { ...(by !== "slots" ? { by } : {}), threshold } },
    shards,
  };
  const header =
    `# yaml-language-server: $schema=${opts.schemaRef ?? "./schemas/cluster.schema.json"}\n` +
    `# Imported from the live cluster: ${o.nodes.length} nodes, ${masters.length} shards` +
    (balanced ? `, balanced by weight${by === "slots" ? "" : ` (by ${by})`}.\n` : `, slots pinned as they are (outside the ${threshold}% threshold${by === "slots" ? "" : ` by ${by}`}).\n`);
  // As `fmt` writes it, so that `fmt --check` passes on what import wrote.
  return formatSpec(header + stringify(doc, { flow: false, lineWidth: 0 }));
}
