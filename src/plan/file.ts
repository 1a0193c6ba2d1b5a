/** The plan file: stable bytes on write; format, digest and step kinds checked on read. */
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { PlanFormatError, PlanTamperedError, InputError } from "../errors.js";
import { planDigest } from "./make.js";
import { serializePlan } from "./serialize.js";
import { PLAN_FORMAT_VERSION, STEP_KINDS, type Plan } from "./types.js";

export { serializePlan };

export function writePlan(file: string, plan: Plan): void {
  writeFileSync(file, serializePlan(plan));
}

/** The command that makes a plan, writing to another file than `file` (which must not be overwritten). */
function makeOne(file: string): string {
  return `make one with \`shardform plan SPEC --out ${basename(file) === "plan.json" ? "new-plan.json" : "plan.json"}\``;
}

/** Parses and verifies a plan; throws PlanFormatError or PlanTamperedError. */
export function parsePlan(text: string, file: string): Plan {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PlanFormatError(file, `it is not JSON (${(err as Error).message}); ${makeOne(file)}`);
  }
  const p = data as Partial<Plan>;
  if (p === null || typeof p !== "object" || p.kind !== "shardform-plan") {
    const what = (p as { kind?: unknown })?.kind === "shardform-snapshot" ? "it is a snapshot, not a plan" : `it has no "kind": "shardform-plan"`;
    throw new PlanFormatError(file, `${what}; ${makeOne(file)}`);
  }
  if (p.formatVersion !== PLAN_FORMAT_VERSION) {
    const older = typeof p.formatVersion === "number" && p.formatVersion < PLAN_FORMAT_VERSION;
    throw new PlanFormatError(
      file,
      older
        ? `it was made by an older shardform (plan format ${p.formatVersion}; this version reads format ${PLAN_FORMAT_VERSION}). Plan again with this version: shardform plan SPEC --out plan.json`
        : `plan format ${String(p.formatVersion)} is not supported (this version reads format ${PLAN_FORMAT_VERSION}); use the shardform that made it, or plan again with this one`,
    );
  }
  if (!Array.isArray(p.steps) || typeof p.digest !== "string" || !p.observed || !p.summary || !p.access || !p.allow) {
    throw new PlanFormatError(file, "required fields are missing (steps, observed, summary, access, allow, digest)");
  }
  const actual = planDigest(p as Plan);
  if (actual !== p.digest) throw new PlanTamperedError(file, p.digest, actual);
  const ids = new Set<string>();
  for (const s of p.steps) {
    const step = s as { kind: unknown; id: unknown; needs: unknown };
    if (!STEP_KINDS.includes(step.kind as never)) {
      throw new PlanFormatError(file, `invalid step kind "${String(step.kind)}" in step ${String(step.id)}`);
    }
    if (!Array.isArray(step.needs) || step.needs.some((n) => !ids.has(String(n)))) {
      throw new PlanFormatError(file, `step ${String(step.id)} needs steps that do not come before it`);
    }
    ids.add(String(step.id));
  }
  return p as Plan;
}

export function readPlan(file: string): Plan {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError(`cannot read plan ${file}: ${(err as Error).message}`);
  }
  return parsePlan(text, file);
}
