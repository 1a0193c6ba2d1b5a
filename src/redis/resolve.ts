/** Node addresses as CLUSTER MEET takes them: an IP address, not a name. */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { parseNodeAddr } from "./node-key.js";

/** host:port with the host resolved to an IP address. */
export async function ipPort(addr: string): Promise<{ ip: string; port: number }> {
  const { host, port } = parseNodeAddr(addr);
  return { ip: isIP(host) ? host : (await lookup(host)).address, port };
}
