import type { Plan } from "../types.js";
import { renderHuman } from "./human.js";
import { renderJson } from "./json.js";
import { renderMarkdown } from "./markdown.js";

export type PlanFormat = "human" | "json" | "markdown";

export function renderPlan(plan: Plan, format: PlanFormat, color: boolean): string {
  switch (format) {
    case "json":
      return renderJson(plan);
    case "markdown":
      return renderMarkdown(plan);
    case "human":
      return renderHuman(plan, { color });
  }
}
