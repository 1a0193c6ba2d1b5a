/** Markdown for a pull-request comment. Pure: (plan) => string. */
import { shortList } from "../hosts.js";
import type { Plan } from "../types.js";
import { inSpecSpelling } from "./spelling.js";
import { accessLine, balanceTable, closingLine, destructiveWarning, formatKeys, permissionLine, planLines } from "./lines.js";
import { topologyDiff } from "./topology.js";

export function renderMarkdown(given: Plan): string {
  const plan = inSpecSpelling(given);
  const s = plan.summary;
  const out: string[] = [];
  out.push(`### shardform plan`);
  out.push("");
  out.push(`**${closingLine(s)}**`);
  out.push("");
  const warn = destructiveWarning(plan);
  const perm = permissionLine(plan);
  if (warn || perm) {
    out.push("> [!WARNING]");
    if (warn) out.push(`> **Destructive:** ${warn} Review these steps before approving.`);
    if (warn && perm) out.push(">");
    if (perm) out.push(`> **Permission:** ${perm}`);
    out.push("");
  }
  for (const w of plan.warnings) out.push(`> [!WARNING]`, `> ${shortList(w)}`, "");
  if (s.changes) {
    out.push("| change | count |");
    out.push("| --- | ---: |");
    const rows: [string, number | string][] = [
      ["nodes to add", s.nodesToAdd],
      ["nodes to remove", s.nodesToRemove],
      ["nodes to reset (data wiped)", s.nodesToReset],
      ["replicas to change", s.replicasToChange],
      ["failovers", s.failovers],
      ["slots to assign", s.slotsToAssign],
      ["slots to move", s.slotsToMove],
      ["keys to move (estimate)", `~${formatKeys(s.keysToMove)}`],
    ];
    for (const [k, v] of rows) if (v !== 0) out.push(`| ${k} | ${v} |`);
    out.push("");
  }
  const bal = balanceTable(plan);
  if (bal) {
    out.push(`| ${bal.header.join(" | ")} |`, `| ${bal.header.map((_, k) => (k === 0 ? "---" : "---:")).join(" | ")} |`);
    for (const r of bal.rows) out.push(`| ${r.join(" | ")} |`);
    out.push("", ...bal.lines.map((l) => `_${l}_`), "");
  }
  for (const n of plan.notes) out.push(`_Note: ${n}_`, "");
  const access = accessLine(plan);
  if (access) out.push(`_${access}_`, "");
  const diff = topologyDiff(plan);
  out.push(`<details${s.changes ? " open" : ""}><summary>Topology before → after</summary>`);
  out.push("");
  out.push("```diff");
  out.push(...diff);
  out.push("```");
  out.push("</details>");
  out.push("");
  if (s.changes) {
    out.push(`<details><summary>${plan.steps.length === 1 ? "The 1 step" : `All ${plan.steps.length} steps`}</summary>`);
    out.push("");
    out.push("```diff");
    for (const l of planLines(plan.steps)) {
      // A diff block colours only "+" and "-"; the step's own mark (~ change, ! failover, -/+ reset) follows the bracket.
      const mark = l.mark === "+" ? "+" : l.mark === "-" || l.mark === "-/+" ? "-" : " ";
      out.push(`${mark} [${l.steps}] ${l.mark} ${l.text}${l.destructive ? "  (DESTRUCTIVE)" : ""}`);
    }
    out.push("```");
    out.push("</details>");
    out.push("");
  }
  out.push(
    `<sub>observed fingerprint \`${plan.observed.fingerprint.slice(0, 19)}\` · spec digest \`${plan.specDigest.slice(0, 19)}\` · plan digest \`${plan.digest.slice(0, 19)}\` · shardform ${plan.toolVersion}</sub>`,
  );
  return out.join("\n") + "\n";
}
