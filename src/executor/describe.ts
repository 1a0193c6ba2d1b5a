import type { Step } from "../plan/types.js";
import { formatRanges } from "../slots.js";

/** One line naming a step, for progress and error messages. */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case "reset-node":
      return `reset-node ${s.node.addr}`;
    case "meet":
      return `meet ${s.node.addr} via ${s.via.addr}`;
    case "add-slots":
      return `add-slots ${formatRanges(s.ranges)} to ${s.node.addr}`;
    case "replicate":
      return `replicate ${s.replica.addr} -> ${s.master.addr}`;
    case "migrate-slot":
      return `migrate-slot ${s.slot} ${s.from.addr} -> ${s.to.addr}`;
    case "failover":
      return `failover ${s.replica.addr} (from ${s.master.addr})`;
    case "move-stray-keys":
      return `move-stray-keys slot ${s.slot} ${s.from.addr} -> ${s.to.addr}`;
    case "forget-node":
      return `forget-node ${s.node.addr} on all members`;
  }
}
