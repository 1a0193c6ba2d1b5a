/** The plan `apply SPEC` last wrote for a spec, when its apply was interrupted: `plan` and `check --spec` point at it. */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { readPlan } from "../plan/file.js";
import { hasResumableCheckpoint } from "../executor/apply.js";

/** The spec's last plan (SPEC.plan.json beside it, as `apply SPEC` writes it) when its checkpoint there has work to resume. */
export function interruptedLastPlan(specFile: string): string | null {
  const file = join(dirname(resolve(specFile)), `${basename(specFile).replace(/\.ya?ml$/, "")}.plan.json`);
  if (!existsSync(file)) return null;
  try {
    return hasResumableCheckpoint(readPlan(file), file) ? file : null;
  } catch {
    return null;
  }
}

/** The command that resumes it. */
export function resumeCommand(planFile: string): string {
  return `shardform apply ${planFile} --auto-approve`;
}

/** The note `plan` and `check --spec` print about it. */
export function interruptedNote(planFile: string): string {
  return (
    `Note: an apply of this spec's last plan, ${planFile}, was interrupted and can be resumed: \`${resumeCommand(planFile)}\` (add the --state-dir it ran with, if any). ` +
    `Applying a new plan of this spec instead supersedes that checkpoint.`
  );
}
