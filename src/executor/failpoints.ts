/**
 * Named points where a test can freeze apply, to kill it in an exact state that timing cannot reach
 * (e.g. between the target's and the source's SETSLOT NODE). Set SHARDFORM_FAILPOINTS to a comma list
 * of names, each optionally "@N" to fire at the Nth time the point is reached (default the first):
 * there apply reports {type:"failpoint"} and then waits forever. Unset, a point costs one lookup.
 * In-process tests can instead set ctx.failpointHook, which runs at every point, and then apply goes on.
 */
import type { ExecCtx } from "./context.js";

const armed = new Map(
  (process.env["SHARDFORM_FAILPOINTS"] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const [name, n] = s.split("@") as [string, string | undefined];
      return [name, Number(n ?? 1)] as const;
    }),
);

export async function failpoint(ctx: ExecCtx, name: string): Promise<void> {
  if (ctx.failpointHook) await ctx.failpointHook(name);
  const left = armed.get(name);
  if (left === undefined) return;
  if (left > 1) {
    armed.set(name, left - 1);
    return;
  }
  armed.delete(name);
  ctx.emit({ type: "failpoint", name });
  await new Promise<never>(() => {});
}
