/**
 * Named points where a test can freeze apply, to kill it in an exact state that timing cannot reach
 * (e.g. between the target's and the source's SETSLOT NODE). Set SHARDFORM_FAILPOINTS to a comma list
 * of names: at such a point apply reports {type:"failpoint"} and then waits forever. Unset, a point
 * costs one lookup.
 */
import type { ExecCtx } from "./context.js";

const armed = new Set((process.env["SHARDFORM_FAILPOINTS"] ?? "").split(",").map((s) => s.trim()).filter(Boolean));

export async function failpoint(ctx: ExecCtx, name: string): Promise<void> {
  if (!armed.has(name)) return;
  armed.delete(name);
  ctx.emit({ type: "failpoint", name });
  await new Promise<never>(() => {});
}
