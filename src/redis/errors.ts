/**
 * What an error from a node means: a refused password, a missing permission, a node that cannot be
 * reached, or a state that passes by itself (CLUSTERDOWN while a failover runs, LOADING after a
 * restart, a node that does not answer for a while). The executor waits out the last kind.
 */
import { AuthFailedError, FailoverPendingError, NodeTimeoutError, NodeUnreachableError, PermissionError } from "../errors.js";
import type { Credentials } from "./connect.js";

/** An error's message, to be quoted inside a sentence: without a final period (servers end some with one). */
export function describe(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\.+$/, "");
}

const CONNECTION = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|ECONNABORTED|Connection is closed|connect ETIMEDOUT|Stream isn't writeable|socket hang up/;

export function isConnectionError(err: unknown): boolean {
  return CONNECTION.test(describe(err));
}

/** A reply that says the node needs a password, or refused the one given; else null. */
export function authError(addr: string, err: unknown, credentials?: Credentials): AuthFailedError | null {
  const msg = describe(err);
  const source = credentials?.source ? ` (from ${credentials.source})` : "";
  const user = credentials?.user ? `user "${credentials.user}" with ` : "";
  if (/NOAUTH|Authentication required/i.test(msg) && !credentials?.password) {
    return new AuthFailedError(
      addr,
      `${addr} needs a password and none was given. Give it with --password-env VAR (the name of an environment variable holding it), ` +
        `the spec's auth.passwordEnv or auth.passwordFile, or REDISCLI_AUTH; add --user NAME for an ACL user.`,
    );
  }
  if (/WRONGPASS|invalid password|invalid username-password|NOAUTH/i.test(msg)) {
    return new AuthFailedError(
      addr,
      `${addr} refused the credentials: ${msg}. shardform sent ${user}the password${source}: check that source and the user name (--user or auth.user).`,
    );
  }
  return null;
}

/** A NOPERM reply, as an error naming the permission to grant. */
export function permissionError(addr: string, err: unknown, what: string, credentials?: Credentials): PermissionError | null {
  const msg = describe(err);
  if (!/^NOPERM/.test(msg)) return null;
  const user = credentials?.user ?? "default";
  return new PermissionError(
    addr,
    `${addr} refused ${what} for ACL user "${user}": ${msg}. Grant the user the permissions listed in the README (section "ACL users"), e.g. ACL SETUSER ${user} +<command>.`,
  );
}

/** What the RESP parser says about bytes that are not the Redis protocol. */
export const NOT_RESP = /Unknown RESP type|Protocol error|invalid (first byte|bulk length)/i;

/** Why a connection could not be made, in words that say what to check. */
export function connectError(addr: string, err: unknown, tls: boolean): NodeUnreachableError {
  const msg = describe(err);
  if (/wrong version number|packet length too long|unknown protocol/i.test(msg)) {
    return new NodeUnreachableError(addr, `the TLS handshake failed (${msg})`, "The port does not speak TLS: drop --tls (or the spec's tls section), or use the node's TLS port.");
  }
  if (/certificate has expired|CERT_HAS_EXPIRED/i.test(msg)) {
    return new NodeUnreachableError(addr, `its TLS certificate has expired (${msg})`, "Renew the node's certificate; --insecure skips the check but also any protection against a forged node.");
  }
  if (/self[- ]signed|unable to (get|verify)|certificate verify failed|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN/i.test(msg)) {
    return new NodeUnreachableError(addr, `its TLS certificate is not signed by the CA shardform was given (${msg})`, "Pass the CA that signed the nodes' certificates with --cacert (or tls.ca in the spec).");
  }
  if (/Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID|altnames/i.test(msg)) {
    return new NodeUnreachableError(addr, `its TLS certificate does not name this host (${msg})`, "Pass the name in the certificate with --sni (or tls.servername in the spec).");
  }
  if (NOT_RESP.test(msg)) {
    return new NodeUnreachableError(addr, `what answered on this port does not speak the Redis protocol (${msg.replace(/\. Please report this\.?$/, "")})`, "Check the port: it should be the node's client port, not an HTTP or bus port.");
  }
  if (tls && /Connection is closed|ECONNRESET|socket hang up/i.test(msg)) {
    return new NodeUnreachableError(addr, `the connection closed during the TLS handshake (${msg})`, "Check that the node listens for TLS on this port and accepts the client certificate (--cert/--key) if it asks for one.");
  }
  if (!tls && /Connection is closed|ECONNRESET/i.test(msg)) {
    return new NodeUnreachableError(addr, `the node closed the connection (${msg})`, "If the node only accepts TLS, pass --tls (and --cacert), or the spec's tls section.");
  }
  return new NodeUnreachableError(addr, msg);
}

/**
 * A state that passes by itself, in words, or null for an error that waiting does not fix.
 * The executor retries a unit of work that failed with such an error, for up to --wait-timeout.
 */
export function transientCause(err: unknown): string | null {
  if (err instanceof NodeTimeoutError || err instanceof NodeUnreachableError || err instanceof FailoverPendingError) return err.message;
  const msg = describe(err);
  if (/(?:^|error: )(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|BUSY )/.test(msg)) return msg;
  // Keys written to a slot between its last GETKEYSINSLOT and SETSLOT NODE: moving them again fixes it.
  if (/while I still hold keys for this hash slot/.test(msg)) return msg;
  if (isConnectionError(err)) return msg;
  return null;
}
