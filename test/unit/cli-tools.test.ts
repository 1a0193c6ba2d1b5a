/** fmt's canonical layout, the completion script, and the Markdown step marks. */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSpec } from "../../src/spec/format.js";
import { parseSpec } from "../../src/spec/load.js";
import { completionScript } from "../../src/cli/completion.js";
import { makeCli } from "../../src/cli/index.js";
import { planLines } from "../../src/plan/render/lines.js";
import { renderMarkdown } from "../../src/plan/render/markdown.js";
import { planSteps } from "../../src/planner/plan.js";
import { makePlan } from "../../src/plan/make.js";
import { A, observed, spec } from "../helpers/build.js";
import { runCli } from "../helpers/cli.js";

const messy = `# my cluster
x-heavy: &heavy { weight: 2 }
shards:
  # the first shard
  - replicas: ["127.0.0.1:7003"]   # its replica
    master:   127.0.0.1:7000
    slots: [" 0 - 100 ", 200]
  - <<: *heavy
    master: 127.0.0.1:7001
cluster:
    balance: { threshold: 2 }
    seeds:
      - 127.0.0.1:7000
`;

describe("fmt", () => {
  it("orders keys, uses flow lists and block shards, normalizes slots; comments, anchors and merge keys stay", () => {
    const out = formatSpec(messy);
    expect(out).toBe(`# my cluster
x-heavy: &heavy { weight: 2 }
cluster:
  seeds: [ 127.0.0.1:7000 ]
  balance: { threshold: 2 }
shards:
  # the first shard
  - master: 127.0.0.1:7000
    replicas: [ "127.0.0.1:7003" ] # its replica
    slots: [ "0-100", 200 ]
  - <<: *heavy
    master: 127.0.0.1:7001
`);
    // the same meaning, and a second pass changes nothing
    expect(parseSpec(out, "c.yaml")).toEqual(parseSpec(messy, "c.yaml"));
    expect(formatSpec(out)).toBe(out);
  });
  it("puts balance.by before the threshold", () => {
    const out = formatSpec(`cluster:\n  seeds: ["127.0.0.1:7000"]\n  balance:\n    threshold: 5\n    by: memory\nshards:\n  - master: 127.0.0.1:7000\n`);
    expect(out).toContain("  balance: { by: memory, threshold: 5 }\n");
  });
  it("keeps a list whose items have comments in block style, each comment with its item", () => {
    const text = `cluster:\n  seeds: ["127.0.0.1:7000"]\nshards:\n  - master: 127.0.0.1:7000\n    replicas: [\n      127.0.0.1:7003, # first\n      127.0.0.1:7004\n    ]\n`;
    const out = formatSpec(text);
    expect(out).toContain("    replicas:\n      - 127.0.0.1:7003 # first\n      - 127.0.0.1:7004\n");
    expect(formatSpec(out)).toBe(out);
    expect(parseSpec(out, "c.yaml")).toEqual(parseSpec(text, "c.yaml"));
  });
});

describe("completion", () => {
  it("completes commands, subcommands and each command's options in bash", () => {
    const script = completionScript(makeCli().definitions(), "bash");
    const dir = mkdtempSync(join(tmpdir(), "shardform-completion-"));
    writeFileSync(join(dir, "c.sh"), script);
    const complete = (line: string): string => {
      const r = spawnSync(
        "bash",
        ["-c", `source ${join(dir, "c.sh")}; read -ra COMP_WORDS <<< "$1"; [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _shardform_complete; echo "\${COMPREPLY[*]}"`, "_", line],
        { encoding: "utf8" },
      );
      return r.stdout.trim();
    };
    expect(complete("shardform pl")).toBe("plan");
    expect(complete("shardform f")).toBe("fmt force-unlock");
    expect(complete("shardform sandbox ")).toBe("up down");
    expect(complete("shardform plan --allow")).toBe("--allow-mass-removal");
    expect(complete("shardform apply --wai")).toBe("--wait-timeout");
    expect(complete("shardform sandbox up --no")).toBe("--nodes --node-timeout");
    expect(completionScript(makeCli().definitions(), "zsh")).toMatch(/^# .*\nautoload -U \+X bashcompinit && bashcompinit\n/);
  });
});

describe("Markdown step marks", () => {
  it("keeps each step's own mark: ~ for replicate, ! for failover, -/+ for reset", () => {
    const o = observed([{ addr: A(7000), slots: ["0-16383"], replicas: [A(7001)] }], [A(7002)]);
    const sp = spec([{ master: A(7001), replicas: [A(7000), A(7002)] }]);
    const { steps } = planSteps(sp, o);
    const md = renderMarkdown(makePlan({ spec: sp, specFile: "s.yaml", observed: o, steps, toolVersion: "t" }));
    expect(planLines(steps).map((l) => l.mark)).toEqual(["+", "!", "~"]);
    expect(md).toMatch(/^\+ \[1\] \+ meet /m);
    expect(md).toMatch(/^ {2}\[2\] ! failover /m);
    expect(md).toMatch(/^ {2}\[3\] ~ replicate /m);
  });
});

describe("--help texts", () => {
  it("no line of a command's details starts with '-' (clipanion would render it as a list item and break the paragraph)", async () => {
    const { commands } = await import("../../src/cli/index.js");
    const bad = commands.flatMap((c) =>
      (c.usage?.details ?? "")
        .split("\n")
        .filter((l) => /^\s*-/.test(l))
        .map((l) => `${c.paths?.[0]?.join(" ")}: ${l.trim()}`),
    );
    expect(bad).toEqual([]);
  });
});

describe("sandbox ports", () => {
  it("warns when client or bus ports lie in the kernel's range for outgoing connections", async () => {
    const { outgoingRangeWarning, outgoingPortRange } = await import("../../src/sandbox/local.js");
    const range: [number, number] = [32768, 60999];
    expect(outgoingRangeWarning(7000, 8, range)).toBeNull();
    expect(outgoingRangeWarning(22700, 8, range)).toBeNull(); // bus 32700-32707
    expect(outgoingRangeWarning(23200, 8, range)).toMatch(/bus ports 33200-33207 lie in the kernel's range for outgoing connections \(32768-60999\).*Address already in use.*below 32768 \(e\.g\. 7000\)/);
    expect(outgoingRangeWarning(40000, 1, range)).toMatch(/^ports 40000-40000/);
    expect(outgoingRangeWarning(40000, 1, null)).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), "shardform-range-"));
    writeFileSync(join(dir, "r"), "32768\t60999\n");
    expect(outgoingPortRange(join(dir, "r"))).toEqual([32768, 60999]);
    expect(outgoingPortRange(join(dir, "missing"))).toBeNull();
  });
});

describe("error codes", () => {
  it("each error class has a stable code: its name without Error, in upper snake case", async () => {
    const errors = await import("../../src/errors.js");
    const codes = Object.fromEntries(
      Object.entries(errors)
        .filter(([, v]) => typeof v === "function" && (v === errors.ShardformError || (v as { prototype?: unknown }).prototype instanceof errors.ShardformError))
        .map(([k]) => [k, errors.errorCode(k)]),
    );
    expect(codes).toMatchObject({
      StalePlanError: "STALE_PLAN",
      LockedError: "LOCKED",
      ClusterChangedError: "CLUSTER_CHANGED",
      SpecValidationError: "SPEC_VALIDATION",
      NodeUnreachableError: "NODE_UNREACHABLE",
      PlanTamperedError: "PLAN_TAMPERED",
      EndStateError: "END_STATE",
      ShardsFailedOverError: "SHARDS_FAILED_OVER",
      CheckpointError: "CHECKPOINT",
    });
    expect(errors.errorCode("UsageError")).toBe("USAGE");
  });
  it("with --json, an error is also a JSON line on stdout with its code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shardform-codes-"));
    const f = join(dir, "bad.yaml");
    writeFileSync(f, "shards:\n  - master: 127.0.0.1:7000\n    weight: -1\n");
    const r = await runCli(["plan", f, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: "error", code: "SPEC_VALIDATION", error: "SpecValidationError" });
    expect(r.stderr).toMatch(/^Error \(SpecValidationError\): /);
    const u = await runCli(["plan", f, "--json", "--markdown"]);
    expect(JSON.parse(u.stdout)).toMatchObject({ type: "error", code: "USAGE" });
  });
});

describe("the debug log", () => {
  it("redacts the passwords of AUTH, HELLO, MIGRATE (AUTH and AUTH2), CONFIG SET and ACL SETUSER", async () => {
    const { formatCommand } = await import("../../src/redis/debug-log.js");
    expect(formatCommand(["auth", "s3cret"])).toBe("AUTH <redacted>");
    expect(formatCommand(["auth", "bob", "s3cret"])).toBe("AUTH bob <redacted>");
    expect(formatCommand(["hello", 3, "auth", "bob", "s3cret"])).toBe("HELLO 3 auth bob <redacted>");
    expect(formatCommand(["migrate", "h", 7001, "", 0, 500, "auth", "s3cret", "keys", "a", "b"])).toBe('MIGRATE h 7001 "" 0 500 auth <redacted> keys a b');
    expect(formatCommand(["migrate", "h", 7001, "", 0, 500, "replace", "auth2", "bob", "s3cret", "keys", "a"])).toBe('MIGRATE h 7001 "" 0 500 replace auth2 bob <redacted> keys a');
    expect(formatCommand(["config", "set", "masterauth", "s3cret", "maxmemory", "1gb"])).toBe("CONFIG set masterauth <redacted> maxmemory 1gb");
    expect(formatCommand(["acl", "setuser", "bob", "on", ">s3cret", "+@all"])).toBe("ACL setuser bob on ><redacted> +@all");
  });
  it("cuts long commands to their first arguments", async () => {
    const { formatCommand } = await import("../../src/redis/debug-log.js");
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    expect(formatCommand(["migrate", "h", 1, "", 0, 5, "keys", ...keys])).toBe('MIGRATE h 1 "" 0 5 keys k0 k1 k2 k3 k4 ... (+95 args)');
  });
});

describe("bad paths are input errors that name the path, before any work (no Internal Error)", () => {
  const dir = mkdtempSync(join(tmpdir(), "shardform-paths-"));
  const spec = join(dir, "c.yaml");
  writeFileSync(spec, `cluster:\n  seeds: ["127.0.0.1:1"]\nshards:\n  - master: 127.0.0.1:1\n`);
  const cases: [string, string[], RegExp][] = [
    ["snapshot --out in a missing folder", ["snapshot", "--seed", "127.0.0.1:1", "--out", join(dir, "no", "s.json")], /--out \S+s\.json: the folder \S+no does not exist: create it, or give another path/],
    ["import --out that is a folder", ["import", "--seed", "127.0.0.1:1", "--out", dir], /--out \S+ is a directory: name a file in it/],
    ["plan --out in a missing folder", ["plan", spec, "--out", join(dir, "no", "p.json")], /--out \S+p\.json: the folder \S+no does not exist/],
    ["sandbox up where no folder can be made", ["sandbox", "up", "--dir", "/proc/shardform-test", "--nodes", "1", "--base-port", "21990"], /\/proc\/shardform-test cannot be made \(ENOENT\): give another --dir/],
  ];
  for (const [what, args, expected] of cases) {
    it(what, async () => {
      const r = await runCli(args);
      expect(r.stderr).toMatch(expected);
      expect(r.stderr).not.toMatch(/Internal Error/);
      expect(r.code).toBe(1);
    });
  }
  it("a usage error's synopsis names option values, not #0", async () => {
    const r = await runCli(["apply", spec, "--no-such-flag"]);
    expect(r.stdout + r.stderr).toMatch(/\[--state-dir DIR\] \[--lock-dir DIR\]/);
    expect(r.stdout + r.stderr).not.toMatch(/#0/);
  });
});
