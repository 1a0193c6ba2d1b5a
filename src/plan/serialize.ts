import stableStringify from "json-stable-stringify";
import type { Plan } from "./types.js";

/** Stable bytes: the same plan always serializes the same way. */
export function serializePlan(plan: Plan): string {
  return stableStringify(plan, { space: 2 }) + "\n";
}
