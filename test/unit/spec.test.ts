import { describe, expect, it } from "vitest";
import { Ajv } from "ajv";
import { AJV_OPTIONS, precompiled } from "../../src/spec/schema-validator.js";
import { readFileSync, readdirSync } from "node:fs";
import { loadSpec, parseSpec } from "../../src/spec/load.js";
import { InputError, SpecValidationError } from "../../src/errors.js";

const ok = `cluster:
  seeds: ["127.0.0.1:7000"]
shards:
  - master: 127.0.0.1:7000
    replicas: [127.0.0.1:7003]
`;

function problems(text: string): string[] {
  try {
    parseSpec(text, "c.yaml");
  } catch (err) {
    if (err instanceof SpecValidationError) return err.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`);
    throw err;
  }
  return [];
}

describe("the schemas themselves", () => {
  it("are valid JSON Schema, in ajv's strict mode (the loader skips this check at run time)", () => {
    for (const f of ["schemas/cluster.schema.json", "schemas/plan.schema.json"]) {
      const ajv = new Ajv({ allErrors: true, strict: true });
      const schema = JSON.parse(readFileSync(f, "utf8")) as object;
      expect(ajv.validateSchema(schema), `${f}: ${ajv.errorsText()}`).toBe(true);
      expect(() => ajv.compile(schema)).not.toThrow();
    }
  });
});

describe("the build's precompiled validator of the spec schema", () => {
  const text = readFileSync("schemas/cluster.schema.json", "utf8");
  it("is made from this schema (same digest) and reports what compiling the schema reports", () => {
    const pre = precompiled(text);
    expect(pre, "dist/spec/cluster-schema.validate.cjs (npm run build)").toBeDefined();
    const compiled = new Ajv(AJV_OPTIONS).compile(JSON.parse(text) as object);
    const samples: unknown[] = [
      {},
      { cluster: { seeds: "127.0.0.1:7000" } },
      { cluster: { seeds: ["127.0.0.1:7000"], balance: { by: "bytes", threshold: 120 } }, shards: [{ master: 7000, wieght: 2 }] },
      { cluster: { seeds: ["127.0.0.1:7000"] }, shards: [{ master: "127.0.0.1:7000", replicas: ["127.0.0.1:7003"], slots: ["0-16383"] }] },
    ];
    for (const data of samples) {
      expect(pre!(data)).toBe(compiled(data));
      expect(pre!.errors ?? null).toEqual(compiled.errors ?? null);
    }
  });
  it("is not used for a schema that changed since the build", () => {
    expect(precompiled(text.replace("shardform cluster spec", "another title"))).toBeUndefined();
  });
});

describe("valid specs", () => {
  it("parses the issue's example shape, with defaults", () => {
    const spec = parseSpec(
      `cluster:
  seeds: ["127.0.0.1:7000"]              # any reachable members
  auth: { passwordEnv: REDIS_PASSWORD }  # optional; user too
  balance: { threshold: 2 }              # percent, optional
shards:
  - master: 127.0.0.1:7000
    replicas: [127.0.0.1:7003]
    weight: 1                            # optional
    slots: ["0-5460"]                    # optional pinning
  - master: 127.0.0.1:7001
`,
      "c.yaml",
    );
    expect(spec).toEqual({
      seeds: ["127.0.0.1:7000"],
      auth: { passwordEnv: "REDIS_PASSWORD" },
      threshold: 2,
      allowReset: [],
      protect: [],
      shards: [
        { master: "127.0.0.1:7000", replicas: ["127.0.0.1:7003"], weight: 1, slots: [[0, 5460]] },
        { master: "127.0.0.1:7001", replicas: [], weight: 1 },
      ],
    });
  });
  it("accepts a slot written as an integer, and YAML anchors merged with << (from an x- key)", () => {
    const spec = parseSpec(
      `x-big: &big { weight: 2 }\ncluster:\n  seeds: ["127.0.0.1:7000"]\n  protect: [127.0.0.1:7001]\nshards:\n  - master: 127.0.0.1:7000\n    slots: [5, "6-10"]\n  - <<: *big\n    master: 127.0.0.1:7001\n`,
      "c.yaml",
    );
    expect(spec.shards).toEqual([
      { master: "127.0.0.1:7000", replicas: [], weight: 1, slots: [[5, 5], [6, 10]] },
      { master: "127.0.0.1:7001", replicas: [], weight: 2 },
    ]);
    expect(spec.protect).toEqual(["127.0.0.1:7001"]);
  });

  it("names the encoding of a file that is not UTF-8", () => {
    const latin1 = Buffer.concat([Buffer.from(`cluster:\n  seeds: ["127.0.0.1:7000"] # caf`), Buffer.from([0xe9]), Buffer.from(`\nshards:\n  - master: 127.0.0.1:7000\n`)]);
    expect(() => parseSpec(latin1, "c.yaml")).toThrow(/c\.yaml:2:34: the file is not UTF-8: byte 0xe9 is not valid here; save the file as UTF-8/);
    const inAddr = Buffer.concat([Buffer.from(`cluster:\n  seeds: ["127.0.0.1:7000"]\nshards:\n  - master: h`), Buffer.from([0xf6]), Buffer.from(`st:7000\n`)]);
    expect(() => parseSpec(inAddr, "c.yaml")).toThrow(/c\.yaml:4:14: the file is not UTF-8: byte 0xf6/);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(ok, "utf16le")]);
    expect(() => parseSpec(utf16, "c.yaml")).toThrow(/the file is UTF-16 .*save it as UTF-8/);
    expect(() => parseSpec(Buffer.from(ok, "utf16le"), "c.yaml")).toThrow(/NUL bytes: it is not UTF-8 text \(UTF-16 perhaps\)/);
  });

  it("accepts cluster.example.yaml and every spec under examples/", () => {
    expect(() => parseSpec(readFileSync("cluster.example.yaml", "utf8"), "cluster.example.yaml")).not.toThrow();
    for (const f of readdirSync("examples").filter((f) => f.endsWith(".yaml"))) {
      expect(() => parseSpec(readFileSync(`examples/${f}`, "utf8"), f)).not.toThrow();
    }
  });
});

// Each bad spec: its text and the exact problems expected (file:line:col: message).
const bad: [string, string, (string | RegExp)[]][] = [
  ["YAML syntax error", `cluster:\n  seeds: [127.0.0.1:7000\nshards: []\n`, [/^c\.yaml:3:\d+: YAML syntax:/]],
  ["not a mapping", `- a\n- b\n`, [`c.yaml:1:1: the spec must be a mapping with "cluster" and "shards" (see cluster.example.yaml)`]],
  ["missing shards", `cluster:\n  seeds: ["127.0.0.1:7000"]\n`, [`c.yaml:1:1: the spec is missing "shards": add it`]],
  ["missing seeds", `cluster: {}\nshards:\n  - master: 127.0.0.1:7000\n`, [/^c\.yaml:1:10: cluster\.seeds is missing/]],
  ["shard with no master", `${ok}  - replicas: [127.0.0.1:7004]\n`, [`c.yaml:6:5: shard 1 has no master: add \`master: host:port\``]],
  ["empty shards", `cluster:\n  seeds: ["127.0.0.1:7000"]\nshards: []\n`, [`c.yaml:3:9: shards is empty: describe at least one shard with a master`]],
  ["unknown key (typo)", `${ok}    wieght: 2\n`, [/^c\.yaml:6:5: unknown key "wieght" in shards\.0: did you mean "weight"\?/]],
  ["bad address", `cluster:\n  seeds: ["127.0.0.1"]\nshards:\n  - master: 127.0.0.1:7000\n`, [/^c\.yaml:2:11: cluster\.seeds\.0 is not a node address: write it as host:port/]],
  ["port out of range", `cluster:\n  seeds: ["127.0.0.1:7000"]\nshards:\n  - master: 127.0.0.1:70000\n`, [/^c\.yaml:4:13: "127\.0\.0\.1:70000" has port 70000, outside 1-65535/]],
  ["node listed twice", `${ok}  - master: 127.0.0.1:7003\n`, [/^c\.yaml:6:13: 127\.0\.0\.1:7003 is listed twice \(first as shards\.0\.replicas\.0\)/]],
  ["same node as master twice", `${ok}  - master: 127.0.0.1:7000\n`, [/^c\.yaml:6:13: 127\.0\.0\.1:7000 is listed twice/]],
  ["weight zero", `${ok}    weight: 0\n`, [`c.yaml:6:13: weight 0 must be greater than 0: use 1 for an equal share, or remove the shard to drain it`]],
  ["negative weight", `${ok}    weight: -2\n`, [/^c\.yaml:6:13: weight -2 must be greater than 0/]],
  ["weight not a number", `${ok}    weight: heavy\n`, [`c.yaml:6:13: shards.0.weight must be number`]],
  ["slot range out of 0-16383", `${ok}    slots: ["16000-16384"]\n`, [/^c\.yaml:6:13: "16000-16384" is not a slot range within 0-16383/]],
  ["reversed slot range", `${ok}    slots: ["100-50"]\n`, [/^c\.yaml:6:13: "100-50" is not a slot range/]],
  ["malformed slot range", `${ok}    slots: ["a-b"]\n`, [/^c\.yaml:6:13: shards\.0\.slots\.0 is not a slot range/]],
  [
    "overlapping pins",
    `${ok}    slots: ["0-100"]\n  - master: 127.0.0.1:7001\n    slots: ["50-200"]\n  - master: 127.0.0.1:7002\n`,
    [/^c\.yaml:8:13: slots 50-200 overlap 0-100 of shard 0/],
  ],
  [
    "pins on every shard leave slots uncovered",
    `${ok}    slots: ["0-8000"]\n  - master: 127.0.0.1:7001\n    slots: ["8001-16000"]\n`,
    [/^c\.yaml:4:3: every shard pins its slots, but slots 16001-16383 are pinned to none/],
  ],
  ["seeds empty", `cluster:\n  seeds: []\nshards:\n  - master: 127.0.0.1:7000\n`, [`c.yaml:2:10: cluster.seeds must not be empty`]],
  ["threshold above 100", `cluster:\n  seeds: ["127.0.0.1:7000"]\n  balance: { threshold: 150 }\nshards:\n  - master: 127.0.0.1:7000\n`, [/^c\.yaml:3:25: cluster\.balance\.threshold must be between 0 and 100/]],
  ["allowReset of a node in no shard", `cluster:\n  seeds: ["127.0.0.1:7000"]\n  allowReset: ["127.0.0.1:7009"]\nshards:\n  - master: 127.0.0.1:7000\n`, [/^c\.yaml:3:16: 127\.0\.0\.1:7009 is in allowReset but in no shard/]],
  ["password in the spec", `cluster:\n  seeds: ["127.0.0.1:7000"]\n  auth: { password: hunter2 }\nshards:\n  - master: 127.0.0.1:7000\n`, [/^c\.yaml:3:11: unknown key "password" in cluster\.auth/]],
  ["more masters than slots", `cluster:\n  seeds: ["127.0.0.1:7000"]\nshards:\n${Array.from({ length: 16400 }, (_, i) => `  - master: 10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:7000\n`).join("")}`, [
    `c.yaml:4:3: the spec has 16400 shards, more than the 16384 slots a cluster has: every master needs at least one slot`,
  ]],
  ["pins leave an unpinned shard no slot, and a weight on a pinned shard", `${ok}    slots: ["0-16383"]\n    weight: 3\n  - master: 127.0.0.1:7001\n`, [
    `c.yaml:7:13: weight 3 has no effect on a shard with pinned slots (it gets exactly its pins): remove the weight, or the slots`,
    `c.yaml:8:5: pins take 16384 slots, leaving 0 for 1 unpinned shard(s): every master needs at least one slot (this shard would get none)`,
  ]],
  ["several YAML documents", `${ok}---\ncluster: {}\n`, [`c.yaml:6:1: the file holds 2 YAML documents (separated by ---): a spec is one document; split them into files`]],
  ["an IPv6 address without brackets", `cluster:\n  seeds: ["::1:37020"]\nshards:\n  - master: "[::1]:7000"\n`, [
    `c.yaml:2:11: cluster.seeds.0 is not a node address: write it as host:port, e.g. 127.0.0.1:7000; an IPv6 address goes in brackets: [::1]:37020`,
  ]],
  ["a top-level key that is not x-", `anchors: &a { weight: 2 }\n${ok}`, [/^c\.yaml:1:1: unknown key "anchors" in the spec/]],
  ["duplicate YAML key", `cluster:\n  seeds: ["127.0.0.1:7000"]\ncluster:\n  seeds: ["127.0.0.1:7001"]\nshards:\n  - master: 127.0.0.1:7000\n`, [`c.yaml:3:1: the key "cluster" appears twice in the same mapping: keep one`]],
];

describe("bad specs: every problem with file:line:col and a fix", () => {
  it.each(bad)("%s", (_name, text, expected) => {
    const got = problems(text);
    expect(got).toHaveLength(expected.length);
    expected.forEach((e, i) => (typeof e === "string" ? expect(got[i]).toBe(e) : expect(got[i]).toMatch(e)));
  });

  it("reports several problems at once, in file order", () => {
    const got = problems(`cluster:
  seeds: ["127.0.0.1:7000"]
shards:
  - master: 127.0.0.1:7000
    weight: 0
  - master: 127.0.0.1:7000
  - replicas: [127.0.0.1:7005]
`);
    // a schema problem (no master) does not hide the meaning checks (weight 0, a node listed twice)
    expect(got).toEqual([
      "c.yaml:5:13: weight 0 must be greater than 0: use 1 for an equal share, or remove the shard to drain it",
      "c.yaml:6:13: 127.0.0.1:7000 is listed twice (first as shards.0.master): a node belongs to one shard, as master or replica",
      "c.yaml:7:5: shard 2 has no master: add `master: host:port`",
    ]);
    const meaning = problems(`cluster:
  seeds: ["127.0.0.1:7000"]
shards:
  - master: 127.0.0.1:7000
    weight: 0
  - master: 127.0.0.1:7000
    slots: ["0-10"]
  - master: 127.0.0.1:7002
    slots: ["5-20"]
`);
    expect(meaning.map((p) => p.split(": ")[0])).toEqual(["c.yaml:5:13", "c.yaml:6:13", "c.yaml:9:13"]);
  });
});

describe("loadSpec: a path that is not a spec file", () => {
  it("a directory is named as one, with what to pass instead (not EISDIR)", () => {
    expect(() => loadSpec("examples")).toThrow(InputError);
    expect(() => loadSpec("examples/")).toThrow("examples/ is a directory: name the spec file in it (e.g. examples/cluster.yaml)");
    expect(() => loadSpec("no-such-spec.yaml")).toThrow(/cannot read spec no-such-spec\.yaml: ENOENT/);
  });
});

describe("balance.by", () => {
  const withBalance = (b: string) => ok.replace(`  seeds: ["127.0.0.1:7000"]\n`, `  seeds: ["127.0.0.1:7000"]\n  balance: ${b}\n`);
  it("by keys, memory or cpu, with 5% as the default threshold; by slots as before", () => {
    expect(parseSpec(withBalance("{ by: memory }"), "c.yaml")).toMatchObject({ balanceBy: "memory", threshold: 5 });
    expect(parseSpec(withBalance("{ by: cpu, threshold: 8 }"), "c.yaml")).toMatchObject({ balanceBy: "cpu", threshold: 8 });
    expect(parseSpec(withBalance("{ by: keys }"), "c.yaml")).toMatchObject({ balanceBy: "keys", threshold: 5 });
    const slots = parseSpec(withBalance("{ by: slots }"), "c.yaml");
    expect(slots.threshold).toBe(2);
    expect("balanceBy" in slots).toBe(false);
  });
  it("anything else is refused where it is written, with the values allowed", () => {
    expect(problems(withBalance("{ by: bytes }"))).toEqual(['c.yaml:3:18: cluster.balance.by is "bytes": write one of slots, keys, memory, cpu']);
  });
});
