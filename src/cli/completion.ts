import { Command, Option, UsageError } from "clipanion";
import { BaseCommand } from "./base.js";

export class CompletionCommand extends BaseCommand {
  static override paths = [["completion"]];
  static override usage = Command.Usage({
    description: "print a shell completion script",
    details: "Prints a script that completes shardform's commands and their options (and file names for their arguments) in bash, or in zsh (through bashcompinit). It is made from the commands' own definitions, so it matches this version.",
    examples: [
      ["Complete in the current bash", "source <($0 completion bash)"],
      ["Install for every bash session", "$0 completion bash > ~/.local/share/bash-completion/completions/shardform"],
      ["Complete in zsh", "source <($0 completion zsh)"],
    ],
  });
  shell = Option.String({ name: "bash|zsh" });

  async run(): Promise<number> {
    if (this.shell !== "bash" && this.shell !== "zsh") throw new UsageError(`the shell is "bash" or "zsh", not "${this.shell}"`);
    this.out(completionScript(this.cli.definitions(), this.shell));
    return 0;
  }
}

/** The script for a list of clipanion definitions ("shardform sandbox up", options "--nodes #0", ...). */
export function completionScript(defs: { path: string; options: { definition: string }[] }[], shell: "bash" | "zsh"): string {
  const commands = defs
    .map((d) => ({ words: d.path.split(" ").slice(1), options: d.options.flatMap((o) => o.definition.split(/[ ,]+/).filter((w) => w.startsWith("--")).map((w) => w.replace(/=.*$/, ""))) }))
    .filter((c) => c.words.length > 0 && !c.words[0]!.startsWith("-"));
  const first = [...new Set(commands.map((c) => c.words[0]!))].sort();
  const cases = commands
    .sort((a, b) => b.words.length - a.words.length)
    .map((c) => `    "${c.words.join(" ")}"*) opts="${[...new Set([...c.options, "--help"])].join(" ")}" ;;`)
    .join("\n");
  const subs = [...new Set(commands.filter((c) => c.words.length === 2).map((c) => c.words[0]!))]
    .map((w) => `    ${w}) COMPREPLY=($(compgen -W "${commands.filter((c) => c.words[0] === w && c.words.length === 2).map((c) => c.words[1]).join(" ")}" -- "$cur")); return ;;`)
    .join("\n");
  return `# shardform completion for ${shell}: source it, or save it where your shell loads completions.
${shell === "zsh" ? "autoload -U +X bashcompinit && bashcompinit\n" : ""}_shardform_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local line="\${COMP_WORDS[*]:1:COMP_CWORD-1} "
  local opts=""
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${first.join(" ")}" -- "$cur"))
    return
  fi
  if [[ $COMP_CWORD -eq 2 ]]; then
    case "\${COMP_WORDS[1]}" in
${subs}
    esac
  fi
  case "$line" in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o default -F _shardform_complete shardform
`;
}
