/**
 * The canonical layout of a spec, as `shardform fmt` writes it: keys in a fixed order (cluster before
 * shards; seeds, auth, tls, balance, allowReset, protect; master, replicas, weight, slots; by,
 * threshold), lists of
 * addresses and slots in flow style (block style when an item has a comment), shards and their settings in block style, two-space indentation,
 * addresses and slot ranges in their normal spelling. It edits the parsed YAML document, so comments,
 * anchors and merge keys (`<<`) stay where they were.
 */
import { isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node, type Pair, type YAMLMap } from "yaml";
import { addrProblem, normalizeAddr } from "../redis/node-key.js";
import { formatRange, parseRange } from "../slots.js";

const ORDER: Record<string, string[]> = {
  root: ["cluster", "shards"],
  cluster: ["seeds", "auth", "tls", "balance", "allowReset", "protect"],
  auth: ["user", "passwordEnv", "passwordFile"],
  tls: ["ca", "cert", "key", "servername", "insecure"],
  shard: ["<<", "master", "replicas", "weight", "slots"],
  balance: ["by", "threshold"],
};
const FLOW_LISTS = new Set(["seeds", "allowReset", "protect", "replicas", "slots"]);
const ADDRESS_KEYS = new Set(["seeds", "allowReset", "protect", "replicas", "master"]);

function keyOf(p: unknown): string {
  if (!isPair(p) || !isScalar(p.key)) return "";
  const v = p.key.value;
  return typeof v === "symbol" ? (v.description ?? "") : String(v);
}

/** Sorts a map's pairs by `order`; keys it does not name keep their place after them (x- keys first at the top). */
function sortMap(map: YAMLMap, order: string[]): void {
  const rank = (p: Pair): number => {
    const k = keyOf(p);
    const i = order.indexOf(k);
    return i >= 0 ? i : k.startsWith("x-") ? -1 : order.length;
  };
  const items = map.items.map((p, i) => ({ p, i }));
  items.sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i);
  map.items = items.map((x) => x.p);
}

function normalizeScalars(node: unknown, normalize: (s: string) => string): void {
  if (isScalar(node) && typeof node.value === "string") node.value = normalize(node.value);
  if (isSeq(node)) for (const item of node.items) normalizeScalars(item, normalize);
}

const addr = (s: string): string => (addrProblem(s) === null ? normalizeAddr(s) : s);
const range = (s: string): string => {
  const r = parseRange(s);
  return r ? formatRange(r) : s;
};

function visitMap(map: YAMLMap, kind: keyof typeof ORDER): void {
  map.flow = kind === "auth" || kind === "tls" ? map.flow : false;
  sortMap(map, ORDER[kind]!);
  for (const p of map.items) {
    const k = keyOf(p);
    const v = p.value as Node | null;
    // A list with a comment on an item stays in block style, one item a line, so the comment keeps its item.
    if (FLOW_LISTS.has(k) && isSeq(v)) v.flow = !v.items.some((x) => isScalar(x) && (x.comment || x.commentBefore));
    if (ADDRESS_KEYS.has(k)) normalizeScalars(v, addr);
    if (k === "slots") normalizeScalars(v, range);
    if (kind === "root" && k === "cluster" && isMap(v)) visitMap(v, "cluster");
    if (kind === "cluster" && (k === "auth" || k === "tls") && isMap(v)) visitMap(v, k);
    if (kind === "cluster" && k === "balance" && isMap(v)) {
      sortMap(v, ORDER["balance"]!);
      v.flow = true;
    }
    if (kind === "root" && k === "shards" && isSeq(v)) {
      v.flow = false;
      for (const sh of v.items) if (isMap(sh)) visitMap(sh, "shard");
    }
  }
}

/** The spec text in canonical layout. The text must be a valid spec (check it first). */
export function formatSpec(text: string): string {
  const doc: Document = parseDocument(text, { merge: true, uniqueKeys: true });
  if (isMap(doc.contents)) visitMap(doc.contents, "root");
  return doc.toString({ indent: 2, indentSeq: true, lineWidth: 0 });
}
