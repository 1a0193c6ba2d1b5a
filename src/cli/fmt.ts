import { readFileSync, writeFileSync } from "node:fs";
import { Command, Option, UsageError } from "clipanion";
import { createTwoFilesPatch } from "diff";
import { BaseCommand } from "./base.js";
import { loadSpec } from "../spec/load.js";
import { formatSpec } from "../spec/format.js";

export class FmtCommand extends BaseCommand {
  static override paths = [["fmt"]];
  static override usage = Command.Usage({
    description: "rewrite specs in the canonical layout",
    details: `
      Like \`terraform fmt\`: rewrites each SPEC in place in the canonical layout (cluster before shards, keys in a fixed
      order, lists of addresses and slots in flow style, two-space indentation, addresses and slot ranges in their
      normal spelling) and prints the names of the files it changed. Comments, anchors and merge keys stay. A spec
      that is not valid is reported and left alone.

      With --check nothing is written: exit 1 when a file is not in the canonical layout (for CI), with --diff the
      changes are printed. Exit codes: 0 formatted (or already canonical), 1 not canonical (--check) or invalid.
    `,
    examples: [
      ["Format a spec in place", "$0 fmt cluster.yaml"],
      ["Fail CI when a spec is not formatted, showing the difference", "$0 fmt --check --diff cluster.yaml examples/*.yaml"],
    ],
  });
  specs = Option.Rest({ name: "SPEC" });
  check = Option.Boolean("--check", false, { description: "Write nothing; exit 1 when a file is not in the canonical layout" });
  diff = Option.Boolean("--diff", false, { description: "Print the changes as a unified diff" });

  async run(): Promise<number> {
    if (this.specs.length === 0) throw new UsageError("name at least one SPEC file");
    let unformatted = 0;
    for (const file of this.specs) {
      loadSpec(file); // an invalid spec is reported (SpecValidationError) and left alone
      const text = readFileSync(file, "utf8");
      const formatted = formatSpec(text);
      if (formatted === text) continue;
      unformatted++;
      if (this.diff) this.out(createTwoFilesPatch(file, file, text, formatted, "", "formatted"));
      if (this.check) this.out(`${file} is not in the canonical layout\n`);
      else {
        writeFileSync(file, formatted);
        this.out(`${file}\n`);
      }
    }
    return this.check && unformatted > 0 ? 1 : 0;
  }
}
