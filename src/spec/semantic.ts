/** Checks of meaning that a JSON schema cannot express. Every problem is collected, not just the first. */
import type { SpecProblem } from "../errors.js";
import { normalizeAddr, parseNodeAddr } from "../redis/node-key.js";
import { SLOT_COUNT, formatRange, parseRange, type SlotRange } from "../slots.js";
import type { Locator } from "./load.js";
import { DEFAULT_THRESHOLD, type ClusterSpec, type ShardSpec } from "./types.js";

/** The spec as the schema admits it. */
export interface RawSpec {
  cluster: {
    seeds: string[];
    auth?: { user?: string; passwordEnv?: string; passwordFile?: string };
    balance?: { threshold?: number };
    allowReset?: string[];
    protect?: string[];
    tls?: { ca?: string; cert?: string; key?: string; servername?: string; insecure?: boolean };
  };
  shards: { master: string; replicas?: string[]; weight?: number; slots?: string[] }[];
}

export function checkMeaning(raw: RawSpec, loc: Locator): { spec: ClusterSpec; problems: SpecProblem[] } {
  const problems: SpecProblem[] = [];
  const addr = (value: string, path: (string | number)[]): string | null => {
    try {
      return normalizeAddr(value);
    } catch {
      const port = Number(value.slice(value.lastIndexOf(":") + 1));
      problems.push(loc.at(path, `"${value}" has port ${port}, outside 1-65535: use a port such as 7000`));
      return null;
    }
  };

  const seeds = raw.cluster.seeds.map((s, i) => addr(s, ["cluster", "seeds", i])).filter((s): s is string => s !== null);

  // Each node may appear once across all shards.
  const firstSeen = new Map<string, string>();
  const claim = (a: string | null, path: (string | number)[]): void => {
    if (a === null) return;
    const prev = firstSeen.get(a);
    if (prev !== undefined) {
      problems.push(loc.at(path, `${a} is listed twice (first as ${prev}): a node belongs to one shard, as master or replica`));
    } else {
      firstSeen.set(a, path.join("."));
    }
  };

  const shards: ShardSpec[] = [];
  const pins: { shard: number; range: SlotRange; path: (string | number)[] }[] = [];
  let invalidRanges = 0;
  raw.shards.forEach((s, i) => {
    const master = addr(s.master, ["shards", i, "master"]);
    claim(master, ["shards", i, "master"]);
    const replicas: string[] = [];
    (s.replicas ?? []).forEach((r, j) => {
      const a = addr(r, ["shards", i, "replicas", j]);
      claim(a, ["shards", i, "replicas", j]);
      if (a !== null) replicas.push(a);
    });
    if (s.weight !== undefined && !(s.weight > 0)) {
      problems.push(loc.at(["shards", i, "weight"], `weight ${s.weight} must be greater than 0: use 1 for an equal share, or remove the shard to drain it`));
    }
    let slots: SlotRange[] | undefined;
    if (s.slots !== undefined) {
      slots = [];
      s.slots.forEach((text, j) => {
        const r = parseRange(text);
        if (r === null) {
          invalidRanges++;
          problems.push(loc.at(["shards", i, "slots", j], `"${text}" is not a slot range within 0-${SLOT_COUNT - 1}: write "A-B" with A <= B <= ${SLOT_COUNT - 1}`));
        } else {
          slots!.push(r);
          pins.push({ shard: i, range: r, path: ["shards", i, "slots", j] });
        }
      });
      slots.sort((a, b) => a[0] - b[0]);
    }
    if (master !== null) shards.push({ master, replicas, weight: s.weight ?? 1, ...(slots ? { slots } : {}) });
  });

  // Pinned ranges must not overlap.
  const sortedPins = [...pins].sort((a, b) => a.range[0] - b.range[0]);
  for (let k = 1; k < sortedPins.length; k++) {
    const prev = sortedPins[k - 1]!;
    const cur = sortedPins[k]!;
    if (cur.range[0] <= prev.range[1]) {
      problems.push(
        loc.at(cur.path, `slots ${formatRange(cur.range)} overlap ${formatRange(prev.range)} of shard ${prev.shard}: each slot is pinned to one shard only`),
      );
    }
  }
  // If every shard is pinned, the pins must cover every slot.
  // (Skipped when a range is invalid: that problem is reported already.)
  if (raw.shards.length > 0 && raw.shards.every((s) => s.slots !== undefined) && invalidRanges === 0) {
    const covered = new Uint8Array(SLOT_COUNT);
    for (const p of pins) for (let x = p.range[0]; x <= p.range[1]; x++) covered[x] = 1;
    const missing: SlotRange[] = [];
    for (let x = 0; x < SLOT_COUNT; x++) {
      if (covered[x]) continue;
      const last = missing[missing.length - 1];
      if (last && last[1] === x - 1) last[1] = x;
      else missing.push([x, x]);
    }
    if (missing.length > 0) {
      problems.push(
        loc.at(["shards"], `every shard pins its slots, but slots ${missing.map(formatRange).join(",")} are pinned to none: add them to a shard or leave one shard unpinned`),
      );
    }
  }

  const allowReset: string[] = [];
  (raw.cluster.allowReset ?? []).forEach((r, i) => {
    const a = addr(r, ["cluster", "allowReset", i]);
    if (a === null) return;
    if (!firstSeen.has(a)) {
      problems.push(loc.at(["cluster", "allowReset", i], `${a} is in allowReset but in no shard: only nodes the spec adds can be reset`));
    } else allowReset.push(a);
  });

  const protect: string[] = [];
  (raw.cluster.protect ?? []).forEach((r, i) => {
    const a = addr(r, ["cluster", "protect", i]);
    if (a !== null) protect.push(a);
  });

  if (raw.cluster.auth?.passwordEnv && raw.cluster.auth.passwordFile) {
    problems.push(loc.at(["cluster", "auth"], `auth has both passwordEnv and passwordFile: keep one`));
  }

  for (const s of seeds) parseNodeAddr(s);
  const spec: ClusterSpec = {
    seeds,
    threshold: raw.cluster.balance?.threshold ?? DEFAULT_THRESHOLD,
    allowReset,
    protect,
    shards,
    ...(raw.cluster.auth ? { auth: raw.cluster.auth } : {}),
    ...(raw.cluster.tls ? { tls: raw.cluster.tls } : {}),
  };
  return { spec, problems };
}
