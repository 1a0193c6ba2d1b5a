/**
 * Checks of meaning that a JSON schema cannot express. They run even when the schema found problems
 * (so that `validate` reports every problem at once), so every field is read defensively: a field of
 * the wrong type is the schema's to report, and is skipped here.
 */
import type { SpecProblem } from "../errors.js";
import { addrProblem, normalizeAddr } from "../redis/node-key.js";
import { SLOT_COUNT, formatRange, parseRange, type SlotRange } from "../slots.js";
import type { Locator } from "./load.js";
import { DEFAULT_LOAD_THRESHOLD, DEFAULT_THRESHOLD, type ClusterSpec, type ShardSpec } from "./types.js";

/** The spec as the schema admits it (and, when the schema found problems, anything at all). */
export interface RawSpec {
  cluster: {
    seeds: string[];
    auth?: { user?: string; passwordEnv?: string; passwordFile?: string };
    balance?: { threshold?: number; by?: string };
    allowReset?: string[];
    protect?: string[];
    tls?: { ca?: string; cert?: string; key?: string; servername?: string; insecure?: boolean };
  };
  shards: { master: string; replicas?: string[]; weight?: number; slots?: (string | number)[] }[];
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const str = (x: unknown): x is string => typeof x === "string";

/** The problems found so far, and the addresses already seen in shards (a node belongs to one shard). */
class Findings {
  readonly problems: SpecProblem[] = [];
  readonly firstSeen = new Map<string, string>();
  readonly loc: Locator;
  constructor(loc: Locator) {
    this.loc = loc;
  }

  /** A well-formed address, normalized; a malformed one the schema did not catch (e.g. its port) is a problem here. */
  addr(value: unknown, path: (string | number)[]): string | null {
    if (!str(value)) return null;
    const why = addrProblem(value);
    if (why === null) return normalizeAddr(value);
    // The schema's pattern reports malformed addresses; a port out of range or brackets around a name pass it.
    const port = /^port (\d+) is outside/.exec(why);
    if (port) this.problem(path, `"${value}" has port ${port[1]}, outside 1-65535: use a port such as 7000`);
    else if (/in brackets/.test(why)) this.problem(path, `"${value}": ${why}`);
    return null;
  }

  /** Each node may appear once across all shards. */
  claim(a: string | null, path: (string | number)[]): void {
    if (a === null) return;
    const prev = this.firstSeen.get(a);
    if (prev !== undefined) this.problem(path, `${a} is listed twice (first as ${prev}): a node belongs to one shard, as master or replica`);
    else this.firstSeen.set(a, path.join("."));
  }

  problem(path: (string | number)[], message: string): void {
    this.problems.push(this.loc.at(path, message));
  }
}

interface Pin {
  shard: number;
  range: SlotRange;
  path: (string | number)[];
}

/** The shards, each master and replica claimed once, their weights and pinned slot ranges. */
function readShards(rawShards: unknown[], f: Findings): { shards: ShardSpec[]; pins: Pin[]; invalidRanges: number } {
  const shards: ShardSpec[] = [];
  const pins: Pin[] = [];
  let invalidRanges = 0;
  rawShards.forEach((raw, i) => {
    const s = isObj(raw) ? raw : {};
    const master = f.addr(s["master"], ["shards", i, "master"]);
    f.claim(master, ["shards", i, "master"]);
    const replicas: string[] = [];
    arr(s["replicas"]).forEach((r, j) => {
      const a = f.addr(r, ["shards", i, "replicas", j]);
      f.claim(a, ["shards", i, "replicas", j]);
      if (a !== null) replicas.push(a);
    });
    const weight = typeof s["weight"] === "number" ? s["weight"] : undefined;
    if (weight !== undefined && !(weight > 0)) {
      f.problem(["shards", i, "weight"], `weight ${weight} must be greater than 0: use 1 for an equal share, or remove the shard to drain it`);
    }
    let slots: SlotRange[] | undefined;
    if (Array.isArray(s["slots"])) {
      slots = [];
      s["slots"].forEach((item, j) => {
        if (!str(item) && typeof item !== "number") return; // the schema reports it
        const r = parseRange(String(item));
        if (r === null) {
          invalidRanges++;
          if (typeof item === "number" || /^\s*\d+\s*(-\s*\d+\s*)?$/.test(item)) {
            f.problem(["shards", i, "slots", j], `"${item}" is not a slot range within 0-${SLOT_COUNT - 1}: write "A-B" with A <= B <= ${SLOT_COUNT - 1}`);
          }
        } else {
          slots!.push(r);
          pins.push({ shard: i, range: r, path: ["shards", i, "slots", j] });
        }
      });
      slots.sort((a, b) => a[0] - b[0]);
      if (weight !== undefined && weight > 0 && weight !== 1) {
        f.problem(["shards", i, "weight"], `weight ${weight} has no effect on a shard with pinned slots (it gets exactly its pins): remove the weight, or the slots`);
      }
    }
    if (master !== null) shards.push({ master, replicas, weight: weight ?? 1, ...(slots ? { slots } : {}) });
  });
  return { shards, pins, invalidRanges };
}

/** Pinned ranges must not overlap, and pins and unpinned shards must fit the 16384 slots (every master gets one at least). */
function checkPins(pins: Pin[], rawShards: unknown[], invalidRanges: number, f: Findings): void {
  const sortedPins = [...pins].sort((a, b) => a.range[0] - b.range[0]);
  for (let k = 1; k < sortedPins.length; k++) {
    const prev = sortedPins[k - 1]!;
    const cur = sortedPins[k]!;
    if (cur.range[0] <= prev.range[1]) {
      f.problem(cur.path, `slots ${formatRange(cur.range)} overlap ${formatRange(prev.range)} of shard ${prev.shard}: each slot is pinned to one shard only`);
    }
  }
  const covered = new Uint8Array(SLOT_COUNT);
  for (const p of pins) for (let x = p.range[0]; x <= p.range[1]; x++) covered[x] = 1;
  const pinnedCount = covered.reduce((n, c) => n + c, 0);
  const unpinned = rawShards.filter((s) => !(isObj(s) && Array.isArray(s["slots"])));
  if (rawShards.length > 0 && unpinned.length === 0 && invalidRanges === 0 && pinnedCount < SLOT_COUNT) {
    const missing: SlotRange[] = [];
    for (let x = 0; x < SLOT_COUNT; x++) {
      if (covered[x]) continue;
      const last = missing[missing.length - 1];
      if (last && last[1] === x - 1) last[1] = x;
      else missing.push([x, x]);
    }
    f.problem(["shards"], `every shard pins its slots, but slots ${missing.map(formatRange).join(",")} are pinned to none: add them to a shard or leave one shard unpinned`);
  }
  if (unpinned.length > SLOT_COUNT - pinnedCount) {
    const first = rawShards.indexOf(unpinned[0]!);
    f.problem(
      ["shards", first],
      pinnedCount === 0
        ? `the spec has ${unpinned.length} shards, more than the ${SLOT_COUNT} slots a cluster has: every master needs at least one slot`
        : `pins take ${pinnedCount} slots, leaving ${SLOT_COUNT - pinnedCount} for ${unpinned.length} unpinned shard(s): every master needs at least one slot (this shard would get none)`,
    );
  }
}

/** cluster.allowReset and cluster.protect: addresses, those of allowReset in a shard. */
function nodeLists(cluster: Record<string, unknown>, f: Findings): { allowReset: string[]; protect: string[] } {
  const allowReset: string[] = [];
  arr(cluster["allowReset"]).forEach((r, i) => {
    const a = f.addr(r, ["cluster", "allowReset", i]);
    if (a === null) return;
    if (!f.firstSeen.has(a)) f.problem(["cluster", "allowReset", i], `${a} is in allowReset but in no shard: only nodes the spec adds can be reset`);
    else allowReset.push(a);
  });
  const protect: string[] = [];
  arr(cluster["protect"]).forEach((r, i) => {
    const a = f.addr(r, ["cluster", "protect", i]);
    if (a !== null) protect.push(a);
  });
  return { allowReset, protect };
}

export function checkMeaning(raw: unknown, loc: Locator): { spec: ClusterSpec; problems: SpecProblem[] } {
  const f = new Findings(loc);
  const root = isObj(raw) ? raw : {};
  const cluster = isObj(root["cluster"]) ? root["cluster"] : {};
  const rawShards = arr(root["shards"]);
  const seeds = arr(cluster["seeds"]).map((s, i) => f.addr(s, ["cluster", "seeds", i])).filter((s): s is string => s !== null);
  const { shards, pins, invalidRanges } = readShards(rawShards, f);
  checkPins(pins, rawShards, invalidRanges, f);
  const { allowReset, protect } = nodeLists(cluster, f);

  const auth = isObj(cluster["auth"]) ? (cluster["auth"] as RawSpec["cluster"]["auth"]) : undefined;
  if (auth?.passwordEnv && auth.passwordFile) f.problem(["cluster", "auth"], `auth has both passwordEnv and passwordFile: keep one`);
  const tls = isObj(cluster["tls"]) ? (cluster["tls"] as RawSpec["cluster"]["tls"]) : undefined;
  if (tls && Boolean(tls.cert) !== Boolean(tls.key)) f.problem(["cluster", "tls"], `tls has ${tls.cert ? "cert" : "key"} without ${tls.cert ? "key" : "cert"}: a client certificate needs both`);
  const balance = isObj(cluster["balance"]) ? cluster["balance"] : {};
  const by = balance["by"] === "keys" || balance["by"] === "memory" || balance["by"] === "cpu" ? balance["by"] : undefined;

  const spec: ClusterSpec = {
    seeds,
    threshold: typeof balance["threshold"] === "number" ? balance["threshold"] : by ? DEFAULT_LOAD_THRESHOLD : DEFAULT_THRESHOLD,
    ...(by ? { balanceBy: by } : {}),
    allowReset,
    protect,
    shards,
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
  };
  return { spec, problems: f.problems };
}
