/**
 * The plan's dependency graph in Graphviz DOT (like `terraform graph`): one vertex per step, an edge
 * from each need to the step that needs it. By default the slot moves of one source->target pair are
 * one vertex (a 3 -> 4 scale-out is then a handful of vertices, not 4,096); `steps: true` draws every
 * step. Destructive steps are drawn red.
 */
import { formatRanges, toRanges } from "../../slots.js";
import type { Plan, Step } from "../types.js";
import { formatKeys, planLines } from "./lines.js";

export interface GraphOptions {
  /** One vertex per step, slot moves included. */
  steps?: boolean;
}

interface Vertex {
  id: string;
  label: string;
  destructive: boolean;
}

const quote = (s: string): string => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

function clip(s: string, max = 60): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

export function renderGraph(plan: Plan, opts: GraphOptions = {}): string {
  const vertexOf = new Map<string, Vertex>();
  const vertices: Vertex[] = [];
  const moves = new Map<string, Extract<Step, { kind: "migrate-slot" }>[]>();
  for (const s of plan.steps) {
    if (s.kind === "migrate-slot" && !opts.steps) {
      const pair = `${s.from.id}->${s.to.id}`;
      let group = moves.get(pair);
      if (!group) {
        group = [];
        moves.set(pair, group);
        const v: Vertex = { id: `migrate ${s.from.addr} -> ${s.to.addr}`, label: "", destructive: false };
        vertices.push(v);
        vertexOf.set(pair, v);
      }
      group.push(s);
      vertexOf.set(s.id, vertexOf.get(pair)!);
      continue;
    }
    const line = planLines([s])[0]!;
    const v: Vertex = { id: s.id, label: `${s.id}\n${line.text}`, destructive: line.destructive };
    vertices.push(v);
    vertexOf.set(s.id, v);
  }
  for (const [pair, group] of moves) {
    const first = group[0]!;
    const keys = group.reduce((n, s) => n + s.estKeys, 0);
    const slots = clip(formatRanges(toRanges(group.map((s) => s.slot))));
    vertexOf.get(pair)!.label = `migrate-slot x${group.length} (${first.id}..${group.at(-1)!.id})\n${slots}\n${first.from.addr} -> ${first.to.addr}, ~${formatKeys(keys)} keys`;
  }

  const edges = new Set<string>();
  for (const s of plan.steps) {
    const to = vertexOf.get(s.id)!;
    for (const n of s.needs) {
      const from = vertexOf.get(n);
      if (from && from !== to) edges.add(`  ${quote(from.id)} -> ${quote(to.id)};`);
    }
  }

  const out = [`digraph shardform_plan {`, `  rankdir = "LR";`, `  node [shape = box, fontname = "monospace"];`];
  for (const v of vertices) out.push(`  ${quote(v.id)} [label = ${quote(v.label)}${v.destructive ? ", color = red, fontcolor = red, style = bold" : ""}];`);
  out.push(...edges, `}`, ``);
  return out.join("\n");
}
