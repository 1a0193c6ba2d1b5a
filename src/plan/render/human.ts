/** Terminal rendering, Terraform-like. Pure: (plan, options) => string. */
import { shortList } from "../hosts.js";
import type { Plan } from "../types.js";
import { inSpecSpelling } from "./spelling.js";
import { accessLine, balanceTable, closingLine, destructiveWarning, permissionLine, planLines, type Mark } from "./lines.js";

export interface HumanOptions {
  color: boolean;
}

const COLORS: Record<Mark, string> = { "+": "32", "-": "31", "~": "33", "!": "35", "-/+": "31" };

export function renderHuman(given: Plan, opts: HumanOptions): string {
  const plan = inSpecSpelling(given);
  const paint = (code: string, s: string): string => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const bold = (s: string): string => paint("1", s);
  const out: string[] = [];
  const snapshot = plan.observed.snapshot;
  out.push(
    `Observed ${snapshot.nodes.length} member(s), ${snapshot.outsiders.length} node(s) outside the cluster; fingerprint ${plan.observed.fingerprint.slice(0, 19)}`,
  );
  for (const n of plan.notes) out.push(`Note: ${n}`);
  const access = accessLine(plan);
  if (access) out.push(access);
  for (const w of plan.warnings) out.push(paint("33", `Warning: ${shortList(w)}`));
  out.push("");
  if (plan.steps.length > 0) {
    out.push("shardform will perform the following actions:");
    out.push("");
    const lines = planLines(plan.steps);
    const width = Math.max(...lines.map((l) => l.steps.length));
    for (const l of lines) {
      const text = `  ${l.mark.padStart(3)} ${l.text}`;
      const painted = paint(COLORS[l.mark], text);
      out.push(`${paint("2", `[${l.steps.padStart(width)}]`)}${l.destructive ? bold(painted) + paint("31;1", "  (destructive)") : painted}`);
    }
    out.push("");
    const warn = destructiveWarning(plan);
    if (warn) {
      out.push(paint("31;1", `Warning: ${warn}`));
      out.push("");
    }
    const perm = permissionLine(plan);
    if (perm) {
      out.push(paint("31;1", perm));
      out.push("");
    }
  }
  const bal = balanceTable(plan);
  if (bal) {
    const table = [bal.header, ...bal.rows];
    const widths = bal.header.map((_, k) => Math.max(...table.map((r) => r[k]!.length)));
    for (const r of table) out.push(`  ${r.map((c, k) => c.padEnd(widths[k]!)).join("  ")}`.trimEnd());
    out.push(...bal.lines, "");
  }
  out.push(bold(closingLine(plan.summary)));
  return out.join("\n") + "\n";
}
