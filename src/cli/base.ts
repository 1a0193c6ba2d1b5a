import { Command, Option, UsageError } from "clipanion";
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { InputError, ShardformError, errorCode } from "../errors.js";
import { disableDebugLog, enableDebugLog } from "../redis/debug-log.js";
import { normalizeAddr } from "../redis/node-key.js";
import type { AccessSource } from "../plan/types.js";
import type { AuthSpec, ClusterSpec, TlsSpec } from "../spec/types.js";
import { loadSpec } from "../spec/load.js";
import { accessOptions, resolveAccess, specAccess, type ResolvedAccess } from "./access.js";

/** Options and helpers every command shares. Subclasses implement run(). */
export abstract class BaseCommand extends Command {
  color = Option.Boolean("--color", { description: "Color output (default: when stdout is a terminal and NO_COLOR is unset); --no-color turns it off" });

  debug = Option.Boolean("--debug", false, { description: "Log every command sent to a node, with its time, on stderr (passwords redacted); also SHARDFORM_LOG=debug" });

  abstract run(): Promise<number>;

  async execute(): Promise<number> {
    const debug = this.debug || process.env["SHARDFORM_LOG"] === "debug";
    if (debug) enableDebugLog((line) => this.context.stderr.write(`${line}\n`));
    try {
      return await this.run();
    } catch (err) {
      const label = this.useColor(this.context.stderr) ? "\x1b[31mError\x1b[0m" : "Error";
      if (this.jsonOutput() && (err instanceof ShardformError || err instanceof UsageError)) {
        const name = err instanceof ShardformError ? err.name : "UsageError";
        this.context.stdout.write(JSON.stringify({ type: "error", code: errorCode(name), error: name, message: err.message }) + "\n");
      }
      if (err instanceof ShardformError) {
        this.context.stderr.write(`${label} (${err.name}): ${err.message}\n`);
        return err.exitCode;
      }
      if (err instanceof UsageError) {
        const path = (this.constructor as typeof Command).paths?.[0]?.join(" ") ?? "";
        this.context.stderr.write(`${label} (UsageError): ${err.message}. See \`shardform ${path} --help\`.\n`);
        return 1;
      }
      throw err;
    } finally {
      if (debug) disableDebugLog();
    }
  }

  /** Whether stdout is JSON (--json, --json-log): an error then also goes there, as {"type":"error","code",...}. */
  jsonOutput(): boolean {
    const self = this as unknown as { json?: unknown; jsonLog?: unknown };
    return self.json === true || self.jsonLog === true;
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

  /** A line on stderr, always shown (what a command waits for). */
  say(msg: string): void {
    this.context.stderr.write(`${msg}\n`);
  }

  /** A warning on stderr, always shown. */
  warn(msg: string): void {
    this.context.stderr.write(`Warning: ${msg}\n`);
  }

  out(text: string): void {
    this.context.stdout.write(text);
  }
}

/** Adds the connection flags (--password-env, --user, --tls ...) and resolves them. */
export abstract class ClusterCommand extends BaseCommand {
  passwordEnv = accessOptions().passwordEnv;
  user = accessOptions().user;
  tls = accessOptions().tls;
  cacert = accessOptions().cacert;
  cert = accessOptions().cert;
  key = accessOptions().key;
  sni = accessOptions().sni;
  insecure = accessOptions().insecure;

  /** The connection settings, from the flags and the spec (or a plan's recorded sources); prints which password source is used. */
  access(from: { spec: { auth?: AuthSpec; tls?: TlsSpec }; specFile: string } | { plan: AccessSource } | null, clientName: string, readSecrets = true): ResolvedAccess {
    const r = resolveAccess(
      { passwordEnv: this.passwordEnv, user: this.user, tls: this.tls, cacert: this.cacert, cert: this.cert, key: this.key, sni: this.sni, insecure: this.insecure },
      from === null ? null : "plan" in from ? from : specAccess(from.spec, from.specFile),
      clientName,
      readSecrets,
    );
    for (const n of r.notes) {
      if (n.startsWith("warning: ")) this.warn(n.slice("warning: ".length));
      else this.status(`Using the ${n}.`);
    }
    return r;
  }

  /** `--spec SPEC`, when given, read and checked, and the connection settings from it and the flags. */
  specAndAccess(specFile: string | undefined, clientName: string): ResolvedAccess & { spec: ClusterSpec | undefined } {
    const spec = specFile ? loadSpec(specFile).spec : undefined;
    return { spec, ...this.access(spec ? { spec, specFile: specFile! } : null, clientName) };
  }
}

export function addrOption(value: string, flag: string): string {
  try {
    return normalizeAddr(value);
  } catch (err) {
    throw new UsageError(`${flag} ${(err as Error).message.replace(/^Invalid node address /, "")}`);
  }
}

/** The --seed values, required: a usage error naming the option when there is none. */
export function seedsOption(values: string[] | undefined, spec?: { seeds: readonly string[] }): string[] {
  if ((!values || values.length === 0) && spec && spec.seeds.length > 0) return [...spec.seeds];
  if (!values || values.length === 0) throw new UsageError("--seed HOST:PORT is required (or --spec SPEC, whose cluster.seeds are used): name a reachable member of the cluster (repeatable)");
  return values.map((s) => addrOption(s, "--seed"));
}

/** --json / --markdown, which exclude each other. */
export function planFormat(json: boolean, markdown: boolean): "human" | "json" | "markdown" {
  if (json && markdown) throw new UsageError("--json and --markdown cannot be used together: pick one");
  return json ? "json" : markdown ? "markdown" : "human";
}

export function intOption(value: string | undefined, flag: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number${max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : ` >= ${min}`}, got "${value}"`);
  }
  return n;
}

/** A positive number that may have decimals (e.g. --max-latency-ms 1.5), from `min` up. */
export function numberOption(value: string | undefined, flag: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min) throw new UsageError(`${flag} must be a number >= ${min}, got "${value}"`);
  return n;
}

/** `--migration auto|atomic|keys`: which protocol slot moves use. */
export function migrationOption(value: string | undefined): "auto" | "atomic" | "keys" {
  const v = value ?? "auto";
  if (v === "auto" || v === "atomic" || v === "keys") return v;
  throw new UsageError(`--migration must be auto, atomic or keys, got "${v}"`);
}

/**
 * An output file named by `flag` (--out), checked before any work: its folder must exist and it must
 * not be a folder itself. Returns the path as given.
 */
export function outputFile(flag: string, file: string): string {
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new InputError(`${flag} ${file} is a directory: name a file in it (e.g. ${join(file, "out.json")})`);
  const dir = dirname(resolve(file));
  if (!existsSync(dir)) throw new InputError(`${flag} ${file}: the folder ${dir} does not exist: create it, or give another path`);
  return file;
}

/** Writes an output file, turning a failure (a full or read-only disk) into an error that names it. */
export function writeOutput(flag: string, file: string, write: () => void): void {
  try {
    write();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code) throw err;
    throw new InputError(`${flag} ${file} cannot be written (${code}): ${(err as Error).message.replace(/^[A-Z]+: /, "")}`);
  }
}
