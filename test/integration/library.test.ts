/**
 * shardform as a library: the package is packed (npm pack), installed into a temporary project, and a
 * script there plans and applies a spec through `import { ... } from "shardform"` on real Redis 7.0
 * processes, with events, then checks the cluster; a TypeScript file there type-checks against the
 * package's .d.ts. Ends with the full checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNodes, type TestSandbox } from "../helpers/cluster.js";
import { fullChecks } from "../helpers/verify.js";

// Ports 20930-20935 (bus 30930-30935): this file's own range.
const BASE = 20930;
const a = (i: number) => `127.0.0.1:${BASE + i}`;
let sb: TestSandbox;
let project: string;

beforeAll(async () => {
  sb = await startNodes(BASE, 6);
  project = mkdtempSync(join(tmpdir(), "shardform-library-"));
  // The package as it would be published (dist/ is built by the global setup).
  execFileSync("npm", ["pack", "--silent", "--pack-destination", project, process.cwd()], { cwd: project, stdio: "pipe" });
  const tarball = readdirSync(project).find((f) => f.endsWith(".tgz"))!;
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "uses-shardform", version: "1.0.0", type: "module", private: true }));
  execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", `./${tarball}`], { cwd: project, stdio: "pipe", timeout: 240_000 });
}, 300_000);
afterAll(async () => {
  await sb?.stop();
});

describe("the library API, installed from the packed package", { timeout: 180_000 }, () => {
  it("plans, applies (with events) and checks a spec; the plan of the same spec then has no changes; the types check", async () => {
    const spec = join(project, "cluster.yaml");
    writeFileSync(
      spec,
      [`cluster:`, `  seeds: ["${a(0)}"]`, `shards:`, ...[0, 1, 2].flatMap((m) => [`  - master: ${a(m)}`, `    replicas: ["${a(m + 3)}"]`])].join("\n") + "\n",
    );
    writeFileSync(
      join(project, "run.mjs"),
      `import { apply, check, plan, renderPlan, savePlan, version, StalePlanError } from "shardform";
const p = await plan("cluster.yaml");
savePlan("plan.json", p);
const events = [];
const result = await apply("plan.json", { onEvent: (e) => events.push(e.type) });
const health = await check({ seeds: ["${a(0)}"] });
const again = await plan("cluster.yaml");
let code = null;
try { await plan("missing.yaml"); } catch (err) { code = err.code; }
console.log(JSON.stringify({ version, steps: p.steps.length, text: renderPlan(p).includes("shardform will perform"), status: result.status, events: [...new Set(events)], healthy: health.healthy, masters: health.overview.masters, changes: again.summary.changes, code, stale: typeof StalePlanError }));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ["run.mjs"], { cwd: project, encoding: "utf8", timeout: 120_000 })) as Record<string, unknown>;
    expect(out).toMatchObject({ status: "done", healthy: true, masters: 3, changes: false, text: true, code: "INPUT", stale: "function" });
    expect(out["steps"]).toBeGreaterThan(3);
    expect(out["events"]).toEqual(expect.arrayContaining(["plan-start", "step-start", "step-done", "done"]));
    // The .d.ts: a TypeScript caller type-checks, and a wrong call does not.
    writeFileSync(
      join(project, "typed.ts"),
      `import { plan, apply, type Plan, type ProgressEvent } from "shardform";
export async function go(file: string): Promise<string> {
  const p: Plan = await plan(file, { migration: "keys" });
  const r = await apply("plan.json", { onEvent: (e: ProgressEvent) => void e.type });
  return \`\${p.summary.changes} \${r.status}\`;
}
`,
    );
    const tsc = [join(process.cwd(), "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--skipLibCheck", "--types", "node", "--typeRoots", join(process.cwd(), "node_modules/@types")];
    execFileSync(process.execPath, [...tsc, "typed.ts"], { cwd: project, stdio: "pipe" });
    writeFileSync(join(project, "wrong.ts"), `import { plan } from "shardform";\nawait plan("x.yaml", { migration: "sideways" });\nexport {};\n`);
    let complaint = "";
    try {
      execFileSync(process.execPath, [...tsc, "wrong.ts"], { cwd: project, stdio: "pipe" });
    } catch (err) {
      complaint = String((err as { stdout?: Buffer }).stdout ?? "");
    }
    expect(complaint).toMatch(/wrong\.ts.*"sideways"/s);
    await fullChecks(a(0), 6, 0, spec);
  });
});
