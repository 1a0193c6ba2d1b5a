import { InputError } from "../errors.js";

/** A node address as the spec and plans write it: "host:port". */
export type NodeAddr = string;

export interface HostPort {
  host: string;
  port: number;
}

const ADDR_RE = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** Parses "host:port" (IPv6 as "[::1]:7000"); throws InputError naming the bad value. */
export function parseNodeAddr(addr: string): HostPort {
  const m = ADDR_RE.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new InputError(`Invalid node address "${addr}": write it as host:port, e.g. 127.0.0.1:7000`);
  }
  const host = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

export function isNodeAddr(addr: string): boolean {
  const m = ADDR_RE.exec(addr);
  return !!m && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

export function formatNodeAddr(hp: HostPort): NodeAddr {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** Canonical form, so that "localhost:7000" and "127.0.0.1:7000" compare as written. */
export function normalizeAddr(addr: string): NodeAddr {
  return formatNodeAddr(parseNodeAddr(addr));
}

/** Orders addresses by host, then numerically by port. */
export function compareAddr(a: NodeAddr, b: NodeAddr): number {
  const pa = parseNodeAddr(a);
  const pb = parseNodeAddr(b);
  return pa.host < pb.host ? -1 : pa.host > pb.host ? 1 : pa.port - pb.port;
}
