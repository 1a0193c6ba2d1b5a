/**
 * Turns steps into display lines, shared by the terminal and Markdown renderers.
 * Consecutive migrate-slot steps with the same source and target become one line.
 */
import { countSlots, formatRanges, toRanges } from "../../slots.js";
import type { NodeRef, Plan, PlanSummary, Step } from "../types.js";
import { formatBytes } from "../../util/bytes.js";

export type Mark = "+" | "-" | "~" | "!" | "-/+";

export interface Line {
  mark: Mark;
  text: string;
  destructive: boolean;
  /** Step ids covered, "4" or "4-1368". */
  steps: string;
}

const short = (n: NodeRef): string => `${n.addr} (${n.id.slice(0, 8)})`;

export function formatKeys(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(n >= 10_000_000 ? 0 : 1)}M`;
  if (n >= 1_000) return `${(n / 1_000).toFixed(n >= 10_000 ? 0 : 1)}K`;
  return String(n);
}

function stepNumber(s: Step): number {
  return Number(s.id.split("-")[0]);
}

export function planLines(steps: readonly Step[]): Line[] {
  const out: Line[] = [];
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    const one = (mark: Mark, text: string, destructive = false): void => {
      out.push({ mark, text: s.reason ? `${text}  # ${s.reason}` : text, destructive, steps: String(stepNumber(s)) });
    };
    switch (s.kind) {
      case "reset-node":
        one("-/+", `reset-node ${short(s.node)}: FLUSHALL and CLUSTER RESET HARD (a new node id), wiping ${s.keys} key(s)`, true);
        break;
      case "meet":
        one("+", `meet ${short(s.node)} via ${s.via.addr}`);
        break;
      case "add-slots":
        one("+", `add-slots ${formatRanges(s.ranges)} (${countSlots(s.ranges)} slots) to ${s.node.addr}`);
        break;
      case "replicate":
        one("~", `replicate ${s.replica.addr} -> master ${s.master.addr}`);
        break;
      case "failover":
        one("!", `failover ${s.replica.addr} takes over from ${s.master.addr}`);
        break;
      case "forget-node":
        one("-", `forget-node ${short(s.node)} on all members`, true);
        break;
      case "move-stray-keys":
        if (s.drop) {
          one("-", `drop-stale-keys slot ${s.slot}: ${s.keys} key(s) on ${s.from.addr}, which does not own the slot: stale copies of ${s.to.addr}'s, which serves it; they are deleted`, true);
          break;
        }
        one(
          "~",
          `move-stray-keys slot ${s.slot}: ${s.keys} key(s) on ${s.from.addr}, which does not own the slot, -> its owner ${s.to.addr}; a key ${s.to.addr} also holds keeps ${s.to.addr}'s copy, and the copy on ${s.from.addr} is deleted`,
          true,
        );
        break;
      case "migrate-slot": {
        const slots = [s.slot];
        let keys = s.estKeys;
        let j = i + 1;
        for (; j < steps.length; j++) {
          const t = steps[j]!;
          if (t.kind !== "migrate-slot" || t.from.id !== s.from.id || t.to.id !== s.to.id || t.reason !== s.reason || t.atomic !== s.atomic) break;
          slots.push(t.slot);
          keys += t.estKeys;
        }
        const ranges = toRanges(slots);
        const last = steps[j - 1]!;
        const text =
          slots.length === 1
            ? `migrate-slot ${s.slot} ${s.from.addr} -> ${s.to.addr} (~${formatKeys(keys)} keys)${s.atomic ? " (atomic)" : ""}`
            : `migrate-slot ${shortRanges(ranges)} (${slots.length} slots, ~${formatKeys(keys)} keys) ${s.from.addr} -> ${s.to.addr}${s.atomic ? " (atomic)" : ""}`;
        out.push({
          mark: "~",
          text: s.reason ? `${text}  # ${s.reason}` : text,
          destructive: false,
          steps: j - 1 === i ? String(stepNumber(s)) : `${stepNumber(s)}-${stepNumber(last)}`,
        });
        i = j - 1;
        break;
      }
    }
  }
  return out;
}

/** Slot ranges for a line: the first few, and how many more (a balance by memory picks slots all over). */
function shortRanges(ranges: [number, number][]): string {
  const SHOWN = 8;
  return ranges.length <= SHOWN ? formatRanges(ranges) : `${formatRanges(ranges.slice(0, SHOWN))},... (+${ranges.length - SHOWN} ranges)`;
}

export function closingLine(s: PlanSummary): string {
  if (!s.changes) return "No changes. The cluster matches the spec.";
  const parts = [`${s.nodesToAdd} node${s.nodesToAdd === 1 ? "" : "s"} to add`, `${s.nodesToRemove} to remove`];
  if (s.nodesToReset) parts.push(`${s.nodesToReset} to reset`);
  if (s.replicasToChange) parts.push(`${s.replicasToChange} replica${s.replicasToChange === 1 ? "" : "s"} to change`);
  if (s.failovers) parts.push(`${s.failovers} failover${s.failovers === 1 ? "" : "s"}`);
  if (s.strayKeys) parts.push(`${s.strayKeys} stray key${s.strayKeys === 1 ? "" : "s"} to move`);
  if (s.staleKeys) parts.push(`${s.staleKeys} stale cop${s.staleKeys === 1 ? "y" : "ies"} to delete`);
  if (s.slotsToAssign) parts.push(`${s.slotsToAssign} slots to assign`);
  parts.push(`${s.slotsToMove} slots to move (~${formatKeys(s.keysToMove)} keys)`);
  return `Plan: ${parts.join(", ")}.`;
}

export function destructiveWarning(plan: Plan): string | null {
  const d = plan.steps.filter((s) => "destructive" in s && s.destructive);
  if (d.length === 0) return null;
  const removed = d.filter((s) => s.kind === "forget-node").map((s) => (s.kind === "forget-node" ? s.node.addr : ""));
  const reset = d.filter((s) => s.kind === "reset-node").map((s) => (s.kind === "reset-node" ? `${s.node.addr} (${s.keys} keys wiped)` : ""));
  const parts: string[] = [];
  if (removed.length) parts.push(`removes ${removed.length} node(s) from the cluster: ${removed.join(", ")}`);
  if (reset.length) parts.push(`resets ${reset.length} node(s), deleting their data: ${reset.join(", ")}`);
  const strays = d.flatMap((s) => (s.kind === "move-stray-keys" && !s.drop ? [`slot ${s.slot} on ${s.from.addr}`] : []));
  const stale = d.flatMap((s) => (s.kind === "move-stray-keys" && s.drop ? [`slot ${s.slot} on ${s.from.addr}`] : []));
  if (stale.length) parts.push(`deletes stale copies of keys a split shard's other master serves: ${stale.join(", ")}`);
  if (strays.length) parts.push(`moves keys that clients cannot read to their slot's owner, deleting those the owner also holds (its copy is kept): ${strays.join(", ")}`);
  return `This plan ${parts.join("; and ")}.`;
}

/** Where the plan's credentials come from, in words (names and paths only). */
export function accessLine(plan: Plan): string | null {
  const a = plan.access;
  const parts: string[] = [];
  if (a.user) parts.push(`ACL user ${a.user}`);
  if (a.passwordEnv) parts.push(`password from environment variable ${a.passwordEnv}`);
  if (a.passwordFile) parts.push(`password from file ${a.passwordFile}`);
  if (a.tls) parts.push(`TLS${a.tls.ca ? ` (CA ${a.tls.ca})` : ""}${a.tls.insecure ? " without certificate checks" : ""}`);
  return parts.length ? `Connects with ${parts.join(", ")}.` : null;
}

/** The permission a plan carries to remove many masters, in words, or null. */
export function permissionLine(plan: Plan): string | null {
  if (!plan.allow.massRemoval) return null;
  return `This plan was made with --allow-mass-removal: it may remove half or more of the masters that own slots (it removes ${plan.summary.mastersRemoved}).`;
}


/**
 * A plan that balances by keys or memory: a row per master (slots, keys, bytes before -> after, and its
 * deviation from its share after), then what moves against the least any plan must move.
 */
export function balanceTable(plan: Plan): { header: string[]; rows: string[][]; lines: string[] } | null {
  const b = plan.balance;
  if (!b) return null;
  const amount = (l: { keys: number; bytes: number; cpu?: number }): number => (b.by === "memory" ? l.bytes : b.by === "cpu" ? (l.cpu ?? 0) : l.keys);
  const cpuText = (us: number): string => `${(us / 1000).toFixed(1)} ms`;
  const unit = (n: number): string => (b.by === "memory" ? formatBytes(n) : b.by === "cpu" ? `${cpuText(n)} of CPU` : formatKeys(Math.round(n)));
  const header = ["master", "slots", "keys", ...(b.by === "memory" ? ["memory"] : b.by === "cpu" ? ["cpu in the window"] : []), `off its share (by ${b.by})`];
  const rows = b.masters.map((m) => {
    const dev = (l: { keys: number; bytes: number; cpu?: number }): string => (m.share ? `${(((amount(l) - m.share) / m.share) * 100).toFixed(1)}%` : "-");
    return [
      m.addr,
      `${m.before.slots} -> ${m.after.slots}`,
      `${formatKeys(m.before.keys)} -> ${formatKeys(m.after.keys)}`,
      ...(b.by === "memory" ? [`${formatBytes(m.before.bytes)} -> ${formatBytes(m.after.bytes)}`] : b.by === "cpu" ? [`${cpuText(m.before.cpu ?? 0)} -> ${cpuText(m.after.cpu ?? 0)}`] : []),
      `${dev(m.before)} -> ${dev(m.after)}`,
    ];
  });
  const moved = amount(b.moved);
  const lines = [
    `Balance by ${b.by} within ${b.threshold}%: worst deviation ${b.before}% -> ${b.after}%; moves ${unit(moved)}${b.by === "memory" ? ` (${formatKeys(b.moved.keys)} keys)` : ""}; ${b.unreachable ? "the bands cannot all be reached (see the warning)" : `no plan can move less than ${unit(b.lowerBound)}${b.lowerBound > 0 ? ` (ratio ${(moved / b.lowerBound).toFixed(2)})` : ""}`}.`,
    `Measured ${b.measuredAt}: ${b.method}.`,
  ];
  return { header, rows, lines };
}
