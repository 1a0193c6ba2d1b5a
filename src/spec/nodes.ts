import type { NodeAddr } from "../redis/node-key.js";
import type { ClusterSpec } from "./types.js";

/** Every node the spec lists, masters and replicas. */
export function specNodes(spec: ClusterSpec): NodeAddr[] {
  return spec.shards.flatMap((s) => [s.master, ...s.replicas]);
}
