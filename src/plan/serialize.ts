import { stableJson } from "../util/stable-json.js";
import type { Plan } from "./types.js";

/** Stable bytes: the same plan always serializes the same way. */
export function serializePlan(plan: Plan): string {
  return stableJson(plan, 2) + "\n";
}
