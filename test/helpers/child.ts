/**
 * The CLI as a child process (bin/shardform.js, built by the global setup), so that a test can act
 * on its JSON progress events while it runs (pause a node, kill it) and see its exit code.
 */
import { spawn } from "node:child_process";

export type Event = { type: string; kind?: string; index?: number; slot?: number; phase?: string; name?: string; id?: string; message?: string; what?: string; cause?: string };

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: Event[];
}

/**
 * Runs `shardform ...args` (with --json-log for apply) and calls `onEvent` for every JSON line on
 * stdout; `onEvent` may return a promise (the child keeps running meanwhile) and may kill the child.
 */
export function runChild(args: string[], onEvent: (e: Event, child: { kill: (sig: NodeJS.Signals) => void; pid: number }) => void | Promise<void> = () => {}, env: Record<string, string> = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/shardform.js", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const events: Event[] = [];
    let stdout = "";
    let stderr = "";
    let buf = "";
    const pending: Promise<void>[] = [];
    const handle = { kill: (sig: NodeJS.Signals) => void child.kill(sig), pid: child.pid! };
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.stdout.on("data", (d) => {
      stdout += String(d);
      buf += String(d);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const e = JSON.parse(line) as Event;
        events.push(e);
        const r = onEvent(e, handle);
        if (r) pending.push(r.catch((err: unknown) => reject(err)));
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      void Promise.all(pending).then(() => resolve({ code, signal, stdout, stderr, events }));
    });
  });
}
