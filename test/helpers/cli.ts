import { PassThrough } from "node:stream";
import { Cli } from "clipanion";
import { joinNegativeNumbers, makeCli } from "../../src/cli/index.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured, non-TTY streams. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d) => (out += String(d)));
  stderr.on("data", (d) => (err += String(d)));
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    // as main() does
    const code = await makeCli({ colors: false }).run(joinNegativeNumbers(args), { ...Cli.defaultContext, stdin: new PassThrough(), stdout, stderr, colorDepth: 1 });
    return { code, stdout: out, stderr: err };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
