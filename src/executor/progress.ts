/** Progress events from the executor; cli/progress.ts shows them (a live line, plain lines, or JSON lines). */
import type { LatencySummary } from "./latency.js";

export type ProgressEvent =
  | { type: "plan-start"; steps: number; resumed: number; limit?: string }
  | { type: "step-start"; index: number; id: string; kind: string; text: string }
  | { type: "step-done"; index: number; id: string; kind: string; skipped: boolean; ms: number }
  | { type: "keys-moved"; slot: number; keys: number }
  | { type: "setslot-node"; slot: number; phase: "target" | "source" | "others" }
  | { type: "wait"; what: string }
  | { type: "retry"; what: string; cause: string; attempt: number }
  | { type: "note"; message: string }
  | { type: "warning"; message: string }
  | { type: "failpoint"; name: string }
  | { type: "done"; steps: number; keysMoved: number; ms: number; timings?: { sinceStartMs: number; prepareMs: number; stepsMs: number; verifyMs: number }; latency?: LatencySummary }
  | { type: "stopped"; reason: string };
