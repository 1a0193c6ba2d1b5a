import { serializePlan } from "../serialize.js";
import type { Plan } from "../types.js";

/** The JSON form is exactly the plan file's content. */
export function renderJson(plan: Plan): string {
  return serializePlan(plan);
}
