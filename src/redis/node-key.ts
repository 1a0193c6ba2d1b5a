import { isIP } from "node:net";
import { InputError } from "../errors.js";

/**
 * A node address as people write it: "host:port". Addresses are for connecting and for display;
 * a node's identity is its node id (one node may be written "localhost:7000", "127.0.0.1:7000" or
 * by a hostname it announces).
 */
export type NodeAddr = string;

export interface HostPort {
  host: string;
  port: number;
}

const ADDR_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** What to write instead of a malformed address, or "" when there is nothing better to suggest. */
function suggestion(addr: string): string {
  const t = addr.trim();
  // "::1:7000": an IPv6 address needs brackets so that its port can be told apart.
  const v6 = /^([0-9a-fA-F:.]*:[0-9a-fA-F:.]*):(\d{1,5})$/.exec(t);
  if (v6 && isIP(v6[1]!) === 6) return `; an IPv6 address goes in brackets: [${v6[1]}]:${v6[2]}`;
  if (isIP(t) !== 0 || /^[A-Za-z0-9_.-]+$/.test(t)) return `; the port is missing, e.g. ${isIP(t) === 6 ? `[${t}]` : t}:7000`;
  return "";
}

/** Parses "host:port" (IPv6 as "[::1]:7000"); throws InputError naming the bad value. */
export function parseNodeAddr(addr: string): HostPort {
  const m = ADDR_RE.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m) throw new InputError(`Invalid node address "${addr}": write it as host:port, e.g. 127.0.0.1:7000${suggestion(addr)}`);
  if (!(port >= 1 && port <= 65535)) throw new InputError(`Invalid node address "${addr}": port ${m[2]} is outside 1-65535`);
  const host = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  if (m[1]!.startsWith("[") && isIP(host) !== 6) throw new InputError(`Invalid node address "${addr}": ${host} in brackets is not an IPv6 address`);
  return { host, port };
}

export function formatNodeAddr(hp: HostPort): NodeAddr {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** The canonical spelling of an address (brackets, no spaces); it does not resolve names. */
export function normalizeAddr(addr: string): NodeAddr {
  return formatNodeAddr(parseNodeAddr(addr));
}

/** Orders addresses by host, then numerically by port. */
export function compareAddr(a: NodeAddr, b: NodeAddr): number {
  const pa = parseNodeAddr(a);
  const pb = parseNodeAddr(b);
  return pa.host < pb.host ? -1 : pa.host > pb.host ? 1 : pa.port - pb.port;
}

/** Explains a malformed address in a sentence, or null when it is well formed. */
export function addrProblem(addr: string): string | null {
  try {
    parseNodeAddr(addr);
    return null;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid node address "[^"]*": /, "");
  }
}
