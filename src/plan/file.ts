/** The plan file: stable bytes on write; format, digest and step kinds checked on read. */
import { readFileSync, writeFileSync } from "node:fs";
import { PlanFormatError, PlanTamperedError, InputError } from "../errors.js";
import { planDigest } from "./make.js";
import { serializePlan } from "./serialize.js";
import { PLAN_FORMAT_VERSION, STEP_KINDS, type Plan } from "./types.js";

export { serializePlan };

export function writePlan(file: string, plan: Plan): void {
  writeFileSync(file, serializePlan(plan));
}

/** Parses and verifies a plan; throws PlanFormatError or PlanTamperedError. */
export function parsePlan(text: string, file: string): Plan {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PlanFormatError(file, `not JSON (${(err as Error).message})`);
  }
  const p = data as Partial<Plan>;
  if (p === null || typeof p !== "object" || p.kind !== "shardform-plan") {
    throw new PlanFormatError(file, `it has no "kind": "shardform-plan"; make one with \`shardform plan SPEC --out ${file}\``);
  }
  if (p.formatVersion !== PLAN_FORMAT_VERSION) {
    throw new PlanFormatError(file, `format version ${String(p.formatVersion)} is not supported; expected ${PLAN_FORMAT_VERSION}`);
  }
  if (!Array.isArray(p.steps) || typeof p.digest !== "string" || !p.observed || !p.summary) {
    throw new PlanFormatError(file, "required fields are missing (steps, observed, summary, digest)");
  }
  for (const s of p.steps) {
    if (!STEP_KINDS.includes((s as { kind: string }).kind as never)) {
      throw new PlanFormatError(file, `invalid step kind "${String((s as { kind: unknown }).kind)}" in step ${String((s as { id: unknown }).id)}`);
    }
  }
  const actual = planDigest(p as Plan);
  if (actual !== p.digest) throw new PlanTamperedError(file, p.digest, actual);
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
