/**
 * Which node each spec address names. A node is its node id: an address is matched to a member when
 * it is the member's announced address, or observe found it to be an alias (it answered with the
 * member's id, it is the hostname the member announces, or its name resolves to the member's
 * address); else to an outsider by the id it answered with. Pure.
 */
import type { ObservedCluster } from "../observe/types.js";
import type { NodeAddr } from "../redis/node-key.js";
import type { ClusterSpec } from "../spec/types.js";
import { specNodes } from "../spec/nodes.js";

export interface Identity {
  /** Spec address -> node id (absent: not observed, or unreachable with no id). */
  idOf: Map<NodeAddr, string>;
  problems: string[];
  /** Display: spec entries that name a member by another spelling. */
  notes: string[];
}

const HOW = {
  answered: "it answered with that node's id",
  hostname: "the node announces that hostname",
  resolved: "the name resolves to the node's address",
};

export function resolveIdentity(spec: ClusterSpec, o: ObservedCluster): Identity {
  const idOf = new Map<NodeAddr, string>();
  const problems: string[] = [];
  const notes: string[] = [];
  const memberByAddr = new Map(o.nodes.map((n) => [n.addr, n]));
  const memberById = new Map(o.nodes.map((n) => [n.id, n]));
  const alias = new Map((o.aliases ?? []).map((a) => [a.addr, a]));
  const outsider = new Map(o.outsiders.map((x) => [x.addr, x]));
  const firstAddrOf = new Map<string, NodeAddr>();
  /** How an alias was found -> "ADDR is MEMBER (id)": one note per way, not one per node. */
  const aliasNotes = new Map<keyof typeof HOW, string[]>();
  for (const addr of [...specNodes(spec), ...spec.allowReset, ...(spec.protect ?? [])]) {
    let id: string | undefined;
    const m = memberByAddr.get(addr);
    if (m) id = m.id;
    else if (alias.has(addr)) {
      const a = alias.get(addr)!;
      id = a.id;
      const n = memberById.get(id);
      const list = aliasNotes.get(a.how) ?? [];
      const entry = `${addr} is ${n?.addr ?? o.outsiders.find((x) => x.id === id)?.addr ?? id.slice(0, 8)} (${id.slice(0, 8)})`;
      if (!list.includes(entry)) list.push(entry);
      aliasNotes.set(a.how, list);
    } else id = outsider.get(addr)?.id;
    if (id === undefined) continue;
    idOf.set(addr, id);
    const prev = firstAddrOf.get(id);
    if (prev !== undefined && prev !== addr) {
      problems.push(`${prev} and ${addr} in the spec are the same node (id ${id.slice(0, 8)}): list it once, under one address`);
    } else firstAddrOf.set(id, addr);
  }
  for (const [how, list] of aliasNotes) {
    if (list.length === 1) notes.push(`${list[0]!.replace(" is ", " in the spec is the member ")}: ${HOW[how]}`);
    else {
      const shown = list.length > 4 ? `${list.slice(0, 4).join(", ")}, and ${list.length - 4} more` : list.join(", ");
      notes.push(`${list.length} addresses in the spec are members written another way (${HOW[how]}): ${shown}`);
    }
  }
  return { idOf, problems, notes: [...new Set(notes)] };
}
