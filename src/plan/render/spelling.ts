/**
 * The plan as the spec spells its nodes, for the renderers: a member the spec writes another way
 * (localhost:7000 for 127.0.0.1:7000, or a hostname it announces) is shown as the spec writes it, and
 * the plan's notes say once which member each such address is. The plan's data keeps the addresses
 * apply connects to; only what is shown changes.
 */
import type { Plan } from "../types.js";

const NODE_ID = /^[0-9a-f]{40}$/;

export function inSpecSpelling(plan: Plan): Plan {
  const names = new Map<string, string>();
  for (const a of plan.observed.snapshot.aliases ?? []) if (!names.has(a.id)) names.set(a.id, a.addr);
  if (names.size === 0) return plan;
  const respell = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(respell);
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = respell(x);
    const id = out["id"];
    if (typeof id === "string" && NODE_ID.test(id) && typeof out["addr"] === "string" && names.has(id)) out["addr"] = names.get(id);
    return out;
  };
  // Warnings name nodes by address too (the notes keep both spellings: one says which member each is).
  const byAddr = new Map<string, string>();
  for (const n of plan.observed.snapshot.nodes) if (names.has(n.id)) byAddr.set(n.addr, names.get(n.id)!);
  for (const x of plan.observed.snapshot.outsiders) if (x.id && names.has(x.id)) byAddr.set(x.addr, names.get(x.id)!);
  const addrs = [...byAddr.keys()].sort((a, b) => b.length - a.length).map((a) => a.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = addrs.length ? new RegExp(`(?<![\\w.:-])(${addrs.join("|")})(?![\\w:])`, "g") : null;
  const warnings = pattern ? plan.warnings.map((w) => w.replace(pattern, (a) => byAddr.get(a) ?? a)) : plan.warnings;
  return {
    ...plan,
    warnings,
    steps: respell(plan.steps) as Plan["steps"],
    observed: { ...plan.observed, snapshot: respell(plan.observed.snapshot) as Plan["observed"]["snapshot"] },
  };
}
