/**
 * The debug log (SHARDFORM_LOG=debug, or --debug): every command sent to a node, with the node, how
 * long it took and whether it failed, on stderr. Secrets never reach it: the arguments of AUTH, HELLO
 * AUTH, MIGRATE's AUTH and AUTH2, CONFIG SET of a password, and ACL SETUSER's passwords are replaced.
 * Long commands (MIGRATE ... KEYS with a thousand keys) are cut to their first arguments.
 */
const REDACTED = "<redacted>";
const SHOWN_ARGS = 12;
const SHOWN_CHARS = 64;

let sink: ((line: string) => void) | null = process.env["SHARDFORM_LOG"] === "debug" ? (line) => process.stderr.write(`${line}\n`) : null;

/** Turns the debug log on (--debug), writing to `write` (default: stderr). */
export function enableDebugLog(write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): void {
  sink = write;
}

export function disableDebugLog(): void {
  sink = null;
}

export function debugEnabled(): boolean {
  return sink !== null;
}

const PASSWORD_CONFIGS = /^(requirepass|masterauth|masteruser|tls-key-file-pass|tls-client-key-file-pass)$/i;

/** The arguments as they may be shown: secrets replaced (see the module comment). */
export function redactArgs(args: readonly (string | number | Buffer)[]): string[] {
  const out = args.map((a) => (Buffer.isBuffer(a) ? a.toString("latin1") : String(a)));
  const name = (out[0] ?? "").toLowerCase();
  const hide = (i: number): void => {
    if (i < out.length) out[i] = REDACTED;
  };
  if (name === "auth") {
    // AUTH password | AUTH user password
    hide(out.length - 1);
  } else if (name === "hello") {
    const at = out.findIndex((a, i) => i > 0 && a.toLowerCase() === "auth");
    if (at > 0) hide(at + 2);
  } else if (name === "migrate") {
    // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH password | AUTH2 username password] [KEYS ...]
    const keysAt = out.findIndex((a, i) => i > 5 && a.toLowerCase() === "keys");
    const end = keysAt < 0 ? out.length : keysAt;
    for (let i = 6; i < end; i++) {
      const a = out[i]!.toLowerCase();
      if (a === "auth") hide(i + 1);
      if (a === "auth2") hide(i + 2);
    }
  } else if (name === "config" && (out[1] ?? "").toLowerCase() === "set") {
    for (let i = 2; i + 1 < out.length; i += 2) if (PASSWORD_CONFIGS.test(out[i]!)) hide(i + 1);
  } else if (name === "acl" && (out[1] ?? "").toLowerCase() === "setuser") {
    for (let i = 3; i < out.length; i++) if (/^[>#<!]/.test(out[i]!)) out[i] = `${out[i]![0]}${REDACTED}`;
  }
  return out;
}

/** One command for the log: redacted, each argument and the whole cut short. */
export function formatCommand(args: readonly (string | number | Buffer)[]): string {
  const shown = redactArgs(args)
    .slice(0, SHOWN_ARGS)
    .map((a) => (a.length > SHOWN_CHARS ? `${a.slice(0, SHOWN_CHARS)}...(${a.length} chars)` : a))
    .map((a) => (/[\s"]/.test(a) || a === "" ? JSON.stringify(a) : a));
  if (shown.length > 0) shown[0] = shown[0]!.toUpperCase();
  return args.length > SHOWN_ARGS ? `${shown.join(" ")} ... (+${args.length - SHOWN_ARGS} args)` : shown.join(" ");
}

/** Logs one command (or pipeline) sent to `addr` once it has answered or failed. */
export function logCommand(addr: string, commands: readonly (readonly (string | number | Buffer)[])[], startedAt: number, err?: unknown): void {
  if (!sink) return;
  const ms = (performance.now() - startedAt).toFixed(1);
  const what =
    commands.length === 1
      ? formatCommand(commands[0]!)
      : `pipeline of ${commands.length}: ${commands.slice(0, 3).map(formatCommand).join("; ")}${commands.length > 3 ? `; ... (+${commands.length - 3})` : ""}`;
  const failed = err === undefined ? "" : ` failed: ${err instanceof Error ? err.message : String(err)}`;
  sink(`debug ${new Date().toISOString()} ${addr} ${what} (${ms} ms)${failed}`);
}

/** Logs a line that is not a command (a connection made, raw bytes written by the bulk writer). */
export function logDebug(message: string): void {
  sink?.(`debug ${new Date().toISOString()} ${message}`);
}
