/**
 * How commands reach the nodes: the password, the ACL user and TLS files, from flags, the spec, or
 * the sources a saved plan recorded. The password comes from, in order: --password-env VAR, the
 * spec's (or plan's) auth.passwordEnv / auth.passwordFile, then REDISCLI_AUTH (as redis-cli). Only
 * names and paths are ever recorded or printed, never the password.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option } from "clipanion";
import { InputError } from "../errors.js";
import type { AccessSource } from "../plan/types.js";
import type { Access, Credentials, TlsSettings } from "../redis/connect.js";
import type { AuthSpec, TlsSpec } from "../spec/types.js";

export interface AccessFlags {
  passwordEnv?: string | undefined;
  user?: string | undefined;
  tls?: boolean | undefined;
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  sni?: string | undefined;
  insecure?: boolean | undefined;
}

export function accessOptions() {
  return {
    passwordEnv: Option.String("--password-env", {
      description: "Read the password from this environment variable (default: the spec's auth, then REDISCLI_AUTH)",
    }),
    user: Option.String("--user", { description: "ACL user name" }),
    tls: Option.Boolean("--tls", { description: "Connect with TLS (implied by --cacert, --cert, --key, --sni, --insecure)" }),
    cacert: Option.String("--cacert", { description: "PEM file of the CA that signed the nodes' certificates" }),
    cert: Option.String("--cert", { description: "PEM file of a client certificate (nodes with tls-auth-clients)" }),
    key: Option.String("--key", { description: "PEM file of the client certificate's private key" }),
    sni: Option.String("--sni", { description: "Server name to expect in the nodes' certificates" }),
    insecure: Option.Boolean("--insecure", { description: "Do not verify the nodes' certificates (tests only)" }),
  };
}

export interface ResolvedAccess {
  access: Access;
  /** What a plan records: names and paths. */
  source: AccessSource;
  /** Lines for the user: which source was used, and sources that were set but ignored. */
  notes: string[];
}

function envPassword(name: string, what: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") {
    throw new InputError(`environment variable ${name} (${what}) is not set: export ${name}=... with the cluster's password, or name another variable with --password-env`);
  }
  return v;
}

function filePassword(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8").split("\n")[0]!.replace(/\r$/, "");
  } catch (err) {
    throw new InputError(`cannot read the password file ${file} (${what}): ${(err as Error).message}`);
  }
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InputError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

/**
 * Credentials and TLS for a command. `recorded` is a spec's auth/tls (with paths relative to the spec
 * file) or a saved plan's access sources (absolute paths).
 */
export function resolveAccess(
  flags: AccessFlags,
  recorded: { auth?: AuthSpec; tls?: TlsSpec; baseDir?: string; from: string } | { plan: AccessSource } | null,
  clientName: string,
  /** false: only work out the sources (plan --observed contacts no node). */
  readSecrets = true,
): ResolvedAccess {
  const source: AccessSource = {};
  const notes: string[] = [];
  let auth: AccessSource = {};
  let tlsRec: AccessSource["tls"] | undefined;
  let from = "";
  if (recorded && "plan" in recorded) {
    auth = recorded.plan;
    tlsRec = recorded.plan.tls;
    from = "the plan";
  } else if (recorded) {
    const base = recorded.baseDir ?? ".";
    auth = {
      ...(recorded.auth?.user ? { user: recorded.auth.user } : {}),
      ...(recorded.auth?.passwordEnv ? { passwordEnv: recorded.auth.passwordEnv } : {}),
      ...(recorded.auth?.passwordFile ? { passwordFile: resolve(base, recorded.auth.passwordFile) } : {}),
    };
    if (recorded.tls) {
      tlsRec = {
        ...(recorded.tls.ca ? { ca: resolve(base, recorded.tls.ca) } : {}),
        ...(recorded.tls.cert ? { cert: resolve(base, recorded.tls.cert) } : {}),
        ...(recorded.tls.key ? { key: resolve(base, recorded.tls.key) } : {}),
        ...(recorded.tls.servername ? { servername: recorded.tls.servername } : {}),
        ...(recorded.tls.insecure ? { insecure: true } : {}),
      };
    }
    from = recorded.from;
  }

  // The password: the first source that is set wins; the others are named as ignored.
  const candidates: { label: string; record: Partial<AccessSource>; read: () => string }[] = [];
  if (flags.passwordEnv) candidates.push({ label: `environment variable ${flags.passwordEnv} (--password-env)`, record: { passwordEnv: flags.passwordEnv }, read: () => envPassword(flags.passwordEnv!, "--password-env") });
  if (auth.passwordEnv) candidates.push({ label: `environment variable ${auth.passwordEnv} (auth.passwordEnv in ${from})`, record: { passwordEnv: auth.passwordEnv }, read: () => envPassword(auth.passwordEnv!, `auth.passwordEnv in ${from}`) });
  if (auth.passwordFile) candidates.push({ label: `file ${auth.passwordFile} (auth.passwordFile in ${from})`, record: { passwordFile: auth.passwordFile }, read: () => filePassword(auth.passwordFile!, `auth.passwordFile in ${from}`) });
  if (process.env["REDISCLI_AUTH"]) candidates.push({ label: "environment variable REDISCLI_AUTH", record: { passwordEnv: "REDISCLI_AUTH" }, read: () => envPassword("REDISCLI_AUTH", "REDISCLI_AUTH") });
  const credentials: Credentials = {};
  const chosen = candidates[0];
  if (chosen) {
    if (readSecrets) credentials.password = chosen.read();
    credentials.source = chosen.label;
    Object.assign(source, chosen.record);
    if (readSecrets) notes.push(`password from ${chosen.label}`);
    for (const c of candidates.slice(1).filter((c) => JSON.stringify(c.record) !== JSON.stringify(chosen.record))) notes.push(`warning: a password is also set in ${c.label}; it is ignored (order: --password-env, the spec or plan, REDISCLI_AUTH)`);
  }
  const user = flags.user ?? auth.user;
  if (user) {
    credentials.user = user;
    source.user = user;
  }

  // TLS: flags override the spec or plan, file by file.
  const tlsWanted = flags.tls || flags.cacert || flags.cert || flags.key || flags.sni || flags.insecure || tlsRec;
  let tls: TlsSettings | undefined;
  if (tlsWanted) {
    const abs = (f: string | undefined): string | undefined => (f ? resolve(f) : undefined);
    const ca = abs(flags.cacert) ?? tlsRec?.ca;
    const cert = abs(flags.cert) ?? tlsRec?.cert;
    const key = abs(flags.key) ?? tlsRec?.key;
    const servername = flags.sni ?? tlsRec?.servername;
    const insecure = flags.insecure ?? tlsRec?.insecure ?? false;
    if ((cert && !key) || (key && !cert)) throw new InputError(`a client certificate needs both --cert and --key (or tls.cert and tls.key)`);
    const pem = (f: string, what: string): Buffer | undefined => (readSecrets ? readPem(f, what) : undefined);
    tls = {
      ...(ca ? { ca: pem(ca, "the CA file") } : {}),
      ...(cert ? { cert: pem(cert, "the client certificate") } : {}),
      ...(key ? { key: pem(key, "the client key") } : {}),
      ...(servername ? { servername } : {}),
      ...(insecure ? { insecure: true } : {}),
    };
    source.tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(servername ? { servername } : {}), ...(insecure ? { insecure: true } : {}) };
  }
  return { access: { credentials, ...(tls ? { tls } : {}), clientName }, source, notes };
}

/** The spec's auth and tls as `resolveAccess` takes them (paths relative to the spec file). */
export function specAccess(spec: { auth?: AuthSpec; tls?: TlsSpec }, specFile: string) {
  return { ...(spec.auth ? { auth: spec.auth } : {}), ...(spec.tls ? { tls: spec.tls } : {}), baseDir: dirname(resolve(specFile)), from: specFile };
}
