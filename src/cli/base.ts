import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, Option, UsageError } from "clipanion";
import { ShardformError, InputError } from "../errors.js";
import type { Credentials } from "../redis/connect.js";
import type { AuthSpec } from "../spec/types.js";
import { normalizeAddr } from "../redis/node-key.js";

/** Options and helpers every command shares. Subclasses implement run(). */
export abstract class BaseCommand extends Command {
  color = Option.Boolean("--color", { description: "Color output (default: when stdout is a terminal and NO_COLOR is unset); --no-color turns it off" });

  abstract run(): Promise<number>;

  async execute(): Promise<number> {
    try {
      return await this.run();
    } catch (err) {
      if (err instanceof ShardformError) {
        this.context.stderr.write(`${this.useColor(this.context.stderr) ? "\x1b[31mError\x1b[0m" : "Error"} (${err.name}): ${err.message}\n`);
        return err.exitCode;
      }
      throw err;
    }
  }

  useColor(stream: NodeJS.WritableStream = this.context.stdout): boolean {
    if (this.color !== undefined) return this.color;
    if (process.env["NO_COLOR"] !== undefined && process.env["NO_COLOR"] !== "") return false;
    return (stream as NodeJS.WriteStream).isTTY === true;
  }

  /** A status line on stderr, shown only to people (stderr is a terminal). */
  status(msg: string): void {
    if ((this.context.stderr as NodeJS.WriteStream).isTTY) this.context.stderr.write(`${msg}\n`);
  }

  out(text: string): void {
    this.context.stdout.write(text);
  }
}

/** Adds --password-env and --user, and resolves credentials like redis-cli does. */
export abstract class ClusterCommand extends BaseCommand {
  passwordEnv = Option.String("--password-env", {
    description: "Read the password from this environment variable (default: the spec's auth, then REDISCLI_AUTH)",
  });
  user = Option.String("--user", { description: "ACL user name" });

  credentials(auth?: AuthSpec, specFile?: string): Credentials {
    const user = this.user ?? auth?.user;
    let password: string | undefined;
    const fromEnv = (name: string): string => {
      const v = process.env[name];
      if (v === undefined || v === "") throw new InputError(`environment variable ${name} is not set: export ${name}=... with the cluster's password`);
      return v;
    };
    if (this.passwordEnv) password = fromEnv(this.passwordEnv);
    else if (auth?.passwordEnv) password = fromEnv(auth.passwordEnv);
    else if (auth?.passwordFile) {
      const f = specFile ? resolve(dirname(specFile), auth.passwordFile) : auth.passwordFile;
      try {
        password = readFileSync(f, "utf8").split("\n")[0]!.trim();
      } catch (err) {
        throw new InputError(`cannot read the password file ${f}: ${(err as Error).message}`);
      }
    } else if (process.env["REDISCLI_AUTH"]) password = process.env["REDISCLI_AUTH"];
    return { ...(user ? { user } : {}), ...(password ? { password } : {}) };
  }
}

export function addrOption(value: string, flag: string): string {
  try {
    return normalizeAddr(value);
  } catch {
    throw new UsageError(`${flag} "${value}" is not host:port, e.g. 127.0.0.1:7000`);
  }
}

/** --json / --markdown, which exclude each other. */
export function planFormat(json: boolean, markdown: boolean): "human" | "json" | "markdown" {
  if (json && markdown) throw new UsageError("--json and --markdown cannot be used together: pick one");
  return json ? "json" : markdown ? "markdown" : "human";
}

export function intOption(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number >= ${min}, got "${value}"`);
  return n;
}
