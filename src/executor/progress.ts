/** Progress events from the executor, and the three ways to show them. */
export type ProgressEvent =
  | { type: "plan-start"; steps: number; resumed: number }
  | { type: "step-start"; index: number; id: string; kind: string; text: string }
  | { type: "step-done"; index: number; id: string; kind: string; skipped: boolean; ms: number }
  | { type: "keys-moved"; slot: number; keys: number }
  | { type: "setslot-node"; slot: number; phase: "target" | "source" | "others" }
  | { type: "wait"; what: string }
  | { type: "note"; message: string }
  | { type: "done"; steps: number; keysMoved: number; ms: number }
  | { type: "stopped"; reason: string };
