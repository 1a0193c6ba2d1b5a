/**
 * The ceiling of key-by-key slot moves on this machine: the same slot moves as shardform's plan, made
 * with the bare protocol and nothing around it. Per source -> target pair, in windows of 256 slots:
 * SETSLOT IMPORTING and MIGRATING, then GETKEYSINSLOT and MIGRATE ... KEYS (16 in flight) until every
 * slot is empty, then SETSLOT NODE on the target, the source and every other master. No checks, no
 * checkpoint, no lease, no waits for agreement or replicas: not safe, only fast. A source's MIGRATEs
 * run one pair after another (Redis runs one MIGRATE at a time per source anyway); sources run side by
 * side. The client is shardform's raw lane (src/redis/raw-lane.ts), which costs a tenth of ioredis.
 */
import { readFileSync } from "node:fs";
import { NodeClient } from "../src/redis/connect.js";
import { encodeCommands } from "../src/redis/raw-pipeline.js";
import { arrayFrame, commandWithRaw, frameError } from "../src/redis/raw-lane.js";

const WINDOW = 256;
const IN_FLIGHT = 16;
const KEYS_PER_MIGRATE = 100;

interface Move {
  slot: number;
  from: string;
  to: string;
}

/** The plan file's slot moves (addresses as the plan has them). */
export function planMoves(planFile: string): Move[] {
  const plan = JSON.parse(readFileSync(planFile, "utf8")) as { steps: { kind: string; slot?: number; from?: { addr: string }; to?: { addr: string } }[] };
  return plan.steps.filter((s) => s.kind === "migrate-slot").map((s) => ({ slot: s.slot!, from: s.from!.addr, to: s.to!.addr }));
}

/** SETSLOTs that must answer +OK; with `replicaOk`, a node that became a replica meanwhile may refuse them (a drained source does, once it gave away its last slot). */
async function ok(c: NodeClient, cmds: (string | number)[][], replicaOk = false): Promise<void> {
  if (cmds.length === 0) return;
  const frames = await c.laneSend([encodeCommands(cmds)], cmds.length, "bare SETSLOT", () => cmds);
  for (const f of frames) {
    const err = frameError(f);
    if (err && !(replicaOk && /only with masters/.test(err.message))) throw err;
  }
}

/** Makes `moves` with the bare protocol; `masters` are every master's address. Returns the seconds taken. */
export async function bareMoves(moves: Move[], masters: string[]): Promise<number> {
  const conns = new Map<string, NodeClient>();
  const ids = new Map<string, string>();
  for (const a of masters) {
    const c = await NodeClient.connect(a);
    conns.set(a, c);
    ids.set(a, String(await c.call("cluster", "myid")));
  }
  const bySource = new Map<string, Map<string, number[]>>();
  for (const m of moves) {
    const pairs = bySource.get(m.from) ?? new Map<string, number[]>();
    bySource.set(m.from, pairs);
    pairs.set(m.to, [...(pairs.get(m.to) ?? []), m.slot]);
  }
  const t0 = performance.now();
  try {
    await Promise.all(
      [...bySource].map(async ([from, pairs]) => {
        const src = conns.get(from)!;
        for (const [to, slots] of pairs) {
          const dst = conns.get(to)!;
          const [host, port] = to.split(":") as [string, string];
          const head = ["migrate", host, port, "", 0, 5000, "keys"];
          for (let w = 0; w < slots.length; w += WINDOW) {
            const win = slots.slice(w, w + WINDOW);
            await ok(dst, win.map((s) => ["cluster", "setslot", s, "importing", ids.get(from)!]));
            await ok(src, win.map((s) => ["cluster", "setslot", s, "migrating", ids.get(to)!]));
            let pending = win;
            while (pending.length > 0) {
              const asked = pending.map((s) => ["cluster", "getkeysinslot", s, KEYS_PER_MIGRATE]);
              const found = await src.laneSend([encodeCommands(asked)], asked.length, "bare GETKEYSINSLOT", () => asked);
              const withKeys = found.flatMap((f, i) => {
                const { count, elements } = arrayFrame(f);
                return count > 0 ? [{ slot: pending[i]!, count, elements }] : [];
              });
              for (let i = 0; i < withKeys.length; i += IN_FLIGHT) {
                const chunk = withKeys.slice(i, i + IN_FLIGHT);
                const r = await src.laneSend(chunk.flatMap((k) => commandWithRaw(head, k.count, k.elements)), chunk.length, "bare MIGRATE", () => []);
                for (const f of r) {
                  const err = frameError(f);
                  if (err) throw err;
                }
              }
              pending = withKeys.map((k) => k.slot);
            }
            const node = win.map((s) => ["cluster", "setslot", s, "node", ids.get(to)!]);
            await ok(dst, node);
            await ok(src, node, true);
            await Promise.all(masters.filter((m) => m !== from && m !== to).map((m) => ok(conns.get(m)!, node, true)));
          }
        }
      }),
    );
    return (performance.now() - t0) / 1000;
  } finally {
    for (const c of conns.values()) await c.close();
  }
}
