/**
 * The safety rules, in one place: where a slot's keys are, when a slot may be handed over, which node
 * serves a shard after the cluster failed it over, and how a failover the cluster made on its own is
 * told apart from a change that loses data. Pure functions over what nodes report (their CLUSTER NODES
 * lines and key counts); the planner, the step handlers, resume and the end-state check all call them.
 *
 * The rules:
 *  1. A slot's keys are on the masters that own it or have it open, in any member's view. A replica
 *     holds its master's copy: its keys count on its master. A node that is a replica in its own view,
 *     or that is LOADING, is never proof that a slot is empty (a demoted master flushes and reloads).
 *  2. A slot may be handed over to a target only when no other master that owns, claims or has the
 *     slot open in any view holds a key of it (COUNTKEYSINSLOT on each of them, nothing else).
 *  3. A slot move is shard to shard: when the cluster fails the source or the target over, the move
 *     goes on from (into) the master that serves that shard now; a master that gave away its last slot
 *     and follows the new owner has merged into it and has nothing left to move.
 *  4. A failover inside a shard during apply (a replica of M promoted, M now its replica) is a change of
 *     roles, not of data: the end-state check and resume accept it and name it; `apply SPEC` again
 *     fails it back.
 *  5. A node is forgotten on every member, and a member that cannot be told (down) is named: in the
 *     plan as a warning, and at the end of apply as a difference, never "complete".
 *  6. A node may be met only while it holds no key and knows no node outside this cluster.
 *  7. A node that is reset gets a new node id (CLUSTER RESET HARD): the cluster it belonged to knows its
 *     old id, keeps pinging it, and would learn this cluster's members from its answers and merge the
 *     two. The steps after the reset name the node by its new id (withRenames), recorded in the
 *     checkpoint the moment the reset happens, so resume and the end-state check follow it too.
 *  8. A key on both ends of a move: while the slot is MIGRATING on a source that holds the key, clients
 *     are served the source's copy, so it wins over a differing copy on the target (busyKeyWinner).
 *  9. Stray keys (of a slot their master neither owns nor has open, while another master owns it) are
 *     moved to the owner only when their origin is known: a plan moved that slot from the stray
 *     holder's shard to the owner's (strayOrigin). The owner's copy of a key wins over the stray one.
 *     Also known (staleCopies): a shard split by a failover. A plan moved the slot into the shard of
 *     holder and owner, and the holder's replication history (master_replid2) shows it was promoted
 *     from a replica of the owner, which went on serving the slot: the promotion took over the slots
 *     the replica knew of, not one just handed over. The holder got those keys only by replicating the
 *     owner and never served them; the owner got every write since. The holder's copies are stale:
 *     deleted (drop), not moved (a key the owner deleted since must not come back).
 *     A move that takes the holder's last slot waits for its stray keys to be gone: Redis makes a
 *     master left without slots a replica of the node that took its last slot, flushing what it held
 *     (plan/simulate.ts, "strays:<id>"). A split shard's holder that follows the owner now holds the
 *     owner's data: no stale copy is left.
 *     Keys of unknown origin are refused, for a person to decide.
 * 10. The server's own slot migration (Valkey 9+ CLUSTER MIGRATESLOTS) keeps a slot's keys on its source
 *     until the server hands the slot over, and rolls back when it fails: the slot then stays the
 *     source's, with its keys. So a window moved that way is started only when no migration of its
 *     slots is running on the source (one left by a stopped apply is followed instead), is done only
 *     when the target owns every slot of it, and runs again from the shard's current masters (rule 3)
 *     when the server reports it failed. A slot half moved key by key is finished key by key.
 */
import type { NodeEntry } from "../redis/cluster-nodes.js";
import type { ObservedCluster, ObservedNode, Role } from "../observe/types.js";
import type { NodeRef, Step } from "../plan/types.js";
import type { SlotRange } from "../slots.js";

export const ownsSlot = (e: { slots: readonly SlotRange[] }, slot: number): boolean => e.slots.some(([a, b]) => slot >= a && slot <= b);

/** The master holding a node's data: itself when it is a master, else its master (rule 1). */
export function dataHolder<T extends { id: string; role: Role; masterId: string | null }>(id: string | undefined, byId: ReadonlyMap<string, T>): T | undefined {
  const n = id === undefined ? undefined : byId.get(id);
  if (!n) return undefined;
  return n.role === "master" ? n : byId.get(n.masterId ?? "");
}

/**
 * For every master of the plan, the nodes that serve its data with it: its replicas in the snapshot
 * and the nodes the plan's replicate steps attach to it. These are the nodes the cluster can promote
 * in its place (rule 3).
 */
export function planReplicas(snapshot: ObservedCluster, steps: readonly Step[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (master: string, replica: string): void => {
    let s = out.get(master);
    if (!s) out.set(master, (s = new Set()));
    s.add(replica);
  };
  for (const n of snapshot.nodes) if (n.role === "replica" && n.masterId) add(n.masterId, n.id);
  for (const s of steps) if (s.kind === "replicate") add(s.master.id, s.replica.id);
  return out;
}

/** Who serves the data of a plan's master now (rule 3). */
export type ShardServer =
  /** the node itself, a master */
  | { kind: "self" }
  /** the cluster promoted one of its replicas: the move goes on with that one */
  | { kind: "failed-over"; to: NodeRef }
  /** it became a replica of a master outside its shard (it gave away its last slot): nothing of it is left to move */
  | { kind: "merged"; into: string | null }
  /** nothing serves it now (down, not yet failed over): wait */
  | { kind: "waiting"; reason: string };

/**
 * Which node serves the data of `node` (a master in the plan) now.
 * `own`: its own CLUSTER NODES line (null when it does not answer); `views`: other members' CLUSTER NODES.
 * A node that says it is a master while the others have promoted one of its replicas over it (a node
 * paused past cluster-node-timeout, just resumed) is not taken at its word.
 */
export function shardServer(node: NodeRef, replicas: ReadonlySet<string>, own: NodeEntry | null, views: readonly NodeEntry[][]): ShardServer {
  const promoted = promotedReplica(node, replicas, views);
  if (own?.role === "master") return promoted ? { kind: "failed-over", to: promoted } : { kind: "self" };
  if (own) {
    const m = own.masterId;
    if (m && replicas.has(m)) {
      const addr = views.flat().find((e) => e.id === m)?.addr;
      return addr ? { kind: "failed-over", to: { id: m, addr } } : { kind: "waiting", reason: `${node.addr} is a replica of ${m.slice(0, 8)}, which no member lists` };
    }
    return { kind: "merged", into: m };
  }
  if (promoted) return { kind: "failed-over", to: promoted };
  return { kind: "waiting", reason: `${node.addr} does not answer and none of its replicas has taken over yet` };
}

/** A replica of `node` that members list as a master holding slots, while `node` is failed or no longer a master in their eyes. */
function promotedReplica(node: NodeRef, replicas: ReadonlySet<string>, views: readonly NodeEntry[][]): NodeRef | null {
  const votes = new Map<string, { ref: NodeRef; n: number }>();
  for (const v of views) {
    const me = v.find((e) => e.id === node.id);
    const replaced = !me || me.role !== "master" || me.flags.includes("fail") || me.slots.length === 0;
    if (!replaced) continue;
    for (const e of v) {
      if (!replicas.has(e.id) || e.role !== "master" || e.slots.length === 0 || e.flags.includes("fail")) continue;
      const addr = e.flags.includes("myself") ? null : e.addr;
      const cur = votes.get(e.id) ?? { ref: { id: e.id, addr: addr ?? e.addr }, n: 0 };
      if (addr) cur.ref = { id: e.id, addr };
      cur.n++;
      votes.set(e.id, cur);
    }
  }
  let best: { ref: NodeRef; n: number } | null = null;
  for (const v of votes.values()) if (!best || v.n > best.n) best = v;
  return best?.ref ?? null;
}

/**
 * For each of `slots` (a window's), the nodes whose keys of it must be counted before it is handed to
 * `targetId` (rule 2): every node that owns it or has it open in any member's view, other than the
 * target, each replaced by the master holding its data. `selves`: each reachable member's own line.
 * Each view's open slots are read once for the whole window.
 */
export function slotsClaimants(slots: readonly number[], targetId: string, views: readonly NodeEntry[][], selves: ReadonlyMap<string, NodeEntry>): Map<number, string[]> {
  const ids = new Map<number, Set<string>>(slots.map((s) => [s, new Set<string>()]));
  for (const v of views) {
    for (const e of v) {
      if (e.role === "master") for (const [slot, set] of ids) if (ownsSlot(e, slot)) set.add(e.id);
      for (const m of e.migrating) ids.get(m.slot)?.add(e.id);
      for (const m of e.importing) ids.get(m.slot)?.add(m.peerId);
    }
  }
  const out = new Map<number, string[]>();
  for (const [slot, set] of ids) {
    const holders = new Set<string>();
    for (const id of set) {
      const holder = dataHolder(id, selves)?.id ?? id;
      if (holder !== targetId) holders.add(holder);
    }
    out.set(slot, [...holders]);
  }
  return out;
}

/** A key count for rule 2: a number from a master, or why it cannot be taken as one. */
export type KeyCount = { keys: number } | { unusable: string };

/**
 * Whether a COUNTKEYSINSLOT answer proves anything: only from a node that is a master in its own view
 * and not loading (rule 1).
 */
export function keyCount(self: NodeEntry | undefined, loading: boolean, answer: number | Error): KeyCount {
  if (!self) return { unusable: "it does not answer" };
  if (self.role !== "master") return { unusable: "it is a replica now (a demoted master flushes and reloads its data)" };
  if (loading) return { unusable: "it is loading its data" };
  if (answer instanceof Error) return { unusable: answer.message };
  return { keys: answer };
}

/**
 * Failovers the cluster made on its own (rule 4): for each master M of the expected state that is now
 * a replica of R, where R was a replica of M (in the expected state or the plan), M -> R.
 */
export function shardSwaps(
  expected: ReadonlyMap<string, { id: string; role: Role; masterId: string | null }>,
  live: readonly (Pick<ObservedNode, "id" | "role" | "masterId"> & { reachable?: boolean })[],
  replicas: ReadonlyMap<string, ReadonlySet<string>>,
): Map<string, string> {
  const liveById = new Map(live.map((n) => [n.id, n]));
  const out = new Map<string, string>();
  const wasReplica = (m: string, r: string): boolean => expected.get(r)?.masterId === m || (replicas.get(m)?.has(r) ?? false);
  for (const n of expected.values()) {
    if (n.role !== "master") continue;
    const l = liveById.get(n.id);
    if (l?.role === "replica" && l.masterId) {
      if (wasReplica(n.id, l.masterId) && liveById.get(l.masterId)?.role === "master") out.set(n.id, l.masterId);
    } else if (l?.reachable === false) {
      // Down (killed) and failed over: one of its replicas is a master now.
      const promoted = live.filter((x) => x.role === "master" && x.reachable !== false && wasReplica(n.id, x.id));
      if (promoted.length === 1) out.set(n.id, promoted[0]!.id);
    }
  }
  return out;
}

/** What the shard swaps (rule 4) make of an expected state: each M -> R has R as master, M and M's other replicas as its replicas, and M's slots on R. */
export function withSwaps<N extends { id: string; role: Role; masterId: string | null }>(
  nodes: ReadonlyMap<string, N>,
  owner: readonly (string | null)[],
  swaps: ReadonlyMap<string, string>,
): { nodes: Map<string, N>; owner: (string | null)[] } {
  const out = new Map([...nodes].map(([id, n]) => [id, { ...n }]));
  for (const [m, r] of swaps) {
    for (const x of out.values()) if (x.masterId === m) x.masterId = r;
    const [mn, rn] = [out.get(m), out.get(r)];
    if (mn) Object.assign(mn, { role: "replica", masterId: r });
    if (rn) Object.assign(rn, { role: "master", masterId: null });
  }
  return { nodes: out, owner: owner.map((o) => (o !== null && swaps.has(o) ? swaps.get(o)! : o)) };
}

/**
 * Rule 5: CLUSTER FORGET is local to the node that receives it (and bans the node for 60 s there
 * only). A member that is down while a node is forgotten still lists it, and when it comes back its
 * gossip brings the node back into every member's table. Returns, for nodes a plan removes, the
 * members that cannot be told (those that are down), in words; empty when every member can be.
 */
export function forgetBlindSpots(removed: readonly { id: string; addr: string }[], members: readonly Pick<ObservedNode, "id" | "addr" | "reachable">[]): string[] {
  if (removed.length === 0) return [];
  const gone = new Set(removed.map((r) => r.id));
  const names = removed.map((r) => r.addr).join(", ");
  return members
    .filter((m) => !m.reachable && !gone.has(m.id))
    .map(
      (m) =>
        `${m.addr} is down, so it cannot forget ${names}, which this plan removes: when it comes back, its gossip brings ${removed.length === 1 ? "it" : "them"} back into the cluster. ` +
        `Bring ${m.addr} back first, or run \`shardform apply\` of the spec again as soon as it is back, so that it forgets ${removed.length === 1 ? "it" : "them"} too`,
    );
}

/**
 * Rule 5, continued: the entries of one member's CLUSTER NODES that keep a removed node in the cluster.
 * That is its own entry (by id), and any handshake at its address: a handshake has a random id until the
 * node answers, and then it becomes the node again. Each of them needs its own CLUSTER FORGET.
 */
export function entriesOf(view: readonly NodeEntry[], node: { id: string; addr: string }): NodeEntry[] {
  return view.filter((e) => e.id === node.id || (e.flags.includes("handshake") && e.addr === node.addr));
}

/**
 * Rule 6: a node may be met only while it holds no key and knows no node outside this cluster (a node
 * of another cluster would merge the two; one with keys would serve them in slots it does not own).
 * `own`: its CLUSTER NODES; `members`: ids of this cluster's members. Returns why not, or null. Checked
 * by the meet step every time it runs, so also on resume.
 */
export function meetRefusal(own: readonly NodeEntry[], keys: number, members: ReadonlySet<string>): string | null {
  if (keys > 0) return `it holds ${keys} key(s)`;
  const strangers = own.filter((e) => !e.flags.includes("myself") && !e.flags.includes("handshake") && !members.has(e.id));
  if (strangers.length > 0) return `it knows ${strangers.length} node(s) outside this cluster (${strangers.slice(0, 3).map((e) => e.addr).join(", ")}): it belongs to another cluster`;
  return null;
}

/**
 * Rule 7: `value` (a plan, a step, any JSON data) with every node id renamed by `renames` (old id ->
 * new id, from CLUSTER RESET HARD). Node ids are 40 hex digits, so a whole-token replace is exact.
 */
export function withRenames<T>(value: T, renames: Readonly<Record<string, string>>): T {
  const pairs = Object.entries(renames);
  if (pairs.length === 0) return value;
  let text = JSON.stringify(value);
  for (const [from, to] of pairs) text = text.replace(new RegExp(`\\b${from}\\b`, "g"), to);
  return JSON.parse(text) as T;
}

/**
 * Rule 8: a key found on both the source and the target of a move, with different values (MIGRATE
 * answered BUSYKEY). While the slot is MIGRATING on the source and the source holds the key, Redis
 * serves that key from the source: a client is sent to the target (ASK) only for keys the source does
 * not have. So the source's copy is the one clients have read and written, and the target's is older:
 * typically the RESTORE of a MIGRATE that timed out, which a paused target ran when it resumed, while
 * the source kept its copy and went on serving it. The source's copy wins ("source"). Outside an open
 * slot nothing says which copy clients read: null, and apply refuses, naming the key.
 */
export function busyKeyWinner(sourceMigratingToTarget: boolean): "source" | null {
  return sourceMigratingToTarget ? "source" : null;
}

/** A slot move of a plan, shard to shard: the ids of the nodes serving each end's data (rule 3). */
export interface PastMove {
  slot: number;
  from: string[];
  to: string[];
}

/** The slot moves of a plan (done or not), for rule 9. */
export function pastMoves(plan: { observed: { snapshot: ObservedCluster }; steps: readonly Step[] }): PastMove[] {
  const shard = planReplicas(plan.observed.snapshot, plan.steps);
  const members = (id: string): string[] => [id, ...(shard.get(id) ?? [])];
  return plan.steps.flatMap((s) => (s.kind === "migrate-slot" ? [{ slot: s.slot, from: members(s.from.id), to: members(s.to.id) }] : []));
}

/**
 * Rule 9: the move that left keys of `slot` on `holder` (a master that neither owns nor has the slot
 * open) while `owner` owns it, or null when no known move explains them. Such keys were written while
 * the slot was served by the holder's shard, before that move handed it over without draining it (a
 * shard failed over mid-move, or an older tool); since then clients were sent to the owner, which got
 * every later write. So a key the owner also holds is newer there, and the stray copy is the one that goes.
 * Keys of unknown origin (a manual ADDSLOTS, a split cluster) may be the newer copy: refused.
 */
export function strayOrigin(holder: string, owner: string, slot: number, moves: readonly PastMove[]): PastMove | null {
  return moves.find((m) => m.slot === slot && m.from.includes(holder) && m.to.includes(owner)) ?? null;
}

/** Whether `node` was promoted from a replica of `from`: its previous replication id is `from`'s current one (rule 9). */
export function promotedFrom(node: { replId2?: string }, from: { replId?: string }): boolean {
  return node.replId2 !== undefined && node.replId2 === from.replId;
}

/**
 * Rule 9, a split shard: no stale copy is left on `holder` once it follows `owner` (the cluster made it
 * the owner's replica when it gave away its last slot, or failed the shard back): it holds the owner's data.
 */
export function staleCopiesGone(holder: { role: Role; masterId: string | null }, owner: string): boolean {
  return holder.role === "replica" && holder.masterId === owner;
}

/**
 * Rule 9, a split shard: the stray keys of `slot` on `holder` are stale copies of `owner`'s when a
 * known move took the slot into the shard of both, and the holder was since promoted from a replica
 * of the owner (its previous replication id is the owner's current one) while the owner kept the slot.
 */
export function staleCopies(
  holder: { id: string; replId2?: string },
  owner: { id: string; replId?: string },
  slot: number,
  moves: readonly PastMove[],
): PastMove | null {
  if (!promotedFrom(holder, owner)) return null;
  return moves.find((m) => m.slot === slot && m.to.includes(holder.id) && m.to.includes(owner.id)) ?? null;
}
