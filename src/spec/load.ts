/**
 * YAML -> ClusterSpec. Every problem is reported at once, each with file:line:col: the encoding
 * (UTF-8 only), YAML syntax (one document; merge keys `<<` and anchors allowed), the JSON schema
 * (schemas/cluster.schema.json), and the checks of meaning (semantic.ts), which run even when the
 * schema found problems.
 */
import { readFileSync } from "node:fs";
import type { ErrorObject } from "ajv";
import { LineCounter, parseAllDocuments, parseDocument, isMap, isSeq, isPair, isScalar, type Document, type Node } from "yaml";
import { SpecValidationError, InputError, type SpecProblem } from "../errors.js";
import { addrProblem } from "../redis/node-key.js";
import { SLOT_COUNT } from "../slots.js";
import { checkMeaning } from "./semantic.js";
import { SCHEMA_URL, schemaValidator } from "./schema-validator.js";
import type { ClusterSpec } from "./types.js";

export { SCHEMA_URL };

/** Finds a document position for an error. */
export class Locator {
  private readonly file: string;
  private readonly doc: Document;
  private readonly lines: LineCounter;
  constructor(file: string, doc: Document, lines: LineCounter) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
  }

  /** The value at `path` in the document, as YAML gives it (for messages). */
  valueAt(path: (string | number)[]): unknown {
    const n = this.doc.getIn(path, true) as unknown;
    return isScalar(n) ? n.value : n;
  }

  /** Position of the node at `path`, or of the deepest existing parent; with `key`, of that key in the map. */
  at(path: (string | number)[], message: string, key?: string): SpecProblem {
    let node: unknown = this.doc.contents;
    let offset = 0;
    const nodeOffset = (n: unknown): number | undefined => ((n as Node | null)?.range ? (n as Node).range![0] : undefined);
    offset = nodeOffset(node) ?? 0;
    const steps = key === undefined ? path : [...path, key];
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      const isKeyStep = key !== undefined && i === steps.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(step));
        if (!pair) break;
        if (isKeyStep) {
          offset = nodeOffset(pair.key) ?? offset;
          break;
        }
        node = pair.value;
        offset = nodeOffset(node) ?? nodeOffset(pair.key) ?? offset;
      } else if (isSeq(node) && typeof step === "number") {
        node = node.items[step];
        if (node === undefined) break;
        offset = nodeOffset(node) ?? offset;
      } else break;
    }
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, col: pos.col, path: "/" + path.join("/"), message };
  }
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const ADDR_HINT = "write it as host:port, e.g. 127.0.0.1:7000";

function schemaMessage(e: ErrorObject, path: (string | number)[], loc: Locator): { message: string; key?: string } {
  const where = path.length ? path.join(".") : "the spec";
  const last = path[path.length - 1];
  const parent = path[path.length - 2];
  if (parent === "slots" || (path.includes("slots") && typeof last === "number")) {
    return { message: `${where} is not a slot range: write a slot (42) or a range ("A-B") with 0 <= A <= B <= ${SLOT_COUNT - 1}` };
  }
  switch (e.keyword) {
    case "required": {
      const prop = (e.params as { missingProperty: string }).missingProperty;
      if (prop === "master") return { message: `shard ${String(last)} has no master: add \`master: host:port\`` };
      if (prop === "seeds") return { message: `cluster.seeds is missing: list at least one reachable node, e.g. seeds: ["127.0.0.1:7000"]` };
      return { message: `${where} is missing "${prop}": add it` };
    }
    case "additionalProperties": {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      const near = closest(prop, known);
      const hint = near ? `did you mean "${near}"?` : known.length ? `the keys here are ${known.join(", ")}` : "check its spelling";
      return { message: `unknown key "${prop}" in ${where}: ${hint} (see schemas/cluster.schema.json)`, key: prop };
    }
    case "pattern": {
      if (path.includes("passwordEnv")) return { message: `${where} is not an environment variable name` };
      const value = loc.valueAt(path);
      const why = typeof value === "string" ? addrProblem(value) : null;
      return { message: `${where} is not a node address: ${why ?? ADDR_HINT}` };
    }
    case "type":
      return { message: `${where} must be ${(e.params as { type: string }).type}` };
    case "minItems":
      if (last === "shards") return { message: `shards is empty: describe at least one shard with a master` };
      return { message: `${where} must not be empty` };
    case "minimum":
    case "maximum":
      return { message: `${where} must be between 0 and 100 (percent)` };
    case "enum": {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      return { message: `${where} is ${JSON.stringify(loc.valueAt(path))}: write one of ${allowed.join(", ")}` };
    }
    default:
      return { message: `${where} ${e.message ?? "is invalid"}` };
  }
}

/** Refuses text that is not UTF-8, naming the encoding or the first bad byte. */
function decode(bytes: Buffer, file: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new SpecValidationError([{ file, line: 1, col: 1, path: "", message: `the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8` }]);
  }
  if (bytes.includes(0)) {
    throw new SpecValidationError([{ file, line: 1, col: 1, path: "", message: `the file contains NUL bytes: it is not UTF-8 text (UTF-16 perhaps); save it as UTF-8` }]);
  }
  const text = bytes.toString("utf8");
  const bad = text.indexOf("\uFFFD");
  if (bad >= 0 && !bytes.includes(Buffer.from("\uFFFD"))) {
    const before = text.slice(0, bad);
    const line = before.split("\n").length;
    const col = bad - before.lastIndexOf("\n");
    const at = Buffer.byteLength(before);
    throw new SpecValidationError([
      { file, line, col, path: "", message: `the file is not UTF-8: byte 0x${bytes[at]!.toString(16).padStart(2, "0")} is not valid here; save the file as UTF-8` },
    ]);
  }
  return text.replace(/^\uFEFF/, "");
}

/** Parses and checks a spec; throws SpecValidationError listing every problem. Pure but for the schema read. */
export function parseSpec(input: string | Buffer, file: string): ClusterSpec {
  const text = typeof input === "string" ? input : decode(input, file);
  const lines = new LineCounter();
  const all = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const docs = Array.isArray(all) ? all : [];
  if (docs.length > 1) {
    const line = text.slice(0, docs[1]!.range[0]).split("\n").length;
    throw new SpecValidationError([{ file, line, col: 1, path: "", message: `the file holds ${docs.length} YAML documents (separated by ---): a spec is one document; split them into files` }]);
  }
  const doc = docs[0] ?? parseDocument("", { lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new SpecValidationError(
      doc.errors.map((err) => {
        const pos = lines.linePos(err.pos[0]);
        if (err.code === "DUPLICATE_KEY") {
          const key = /^[^:\n]*/.exec(text.slice(err.pos[0]))![0].trim();
          return { file, line: pos.line, col: pos.col, path: "", message: `the key "${key}" appears twice in the same mapping: keep one` };
        }
        return { file, line: pos.line, col: pos.col, path: "", message: `YAML syntax: ${err.message.split("\n")[0]}` };
      }),
    );
  }
  const loc = new Locator(file, doc, lines);
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (data === null || data === undefined || typeof data !== "object" || Array.isArray(data)) {
    throw new SpecValidationError([loc.at([], `the spec must be a mapping with "cluster" and "shards" (see cluster.example.yaml)`)]);
  }
  const shards = (data as { shards?: unknown }).shards;
  if (Array.isArray(shards) && shards.length > SLOT_COUNT) {
    throw new SpecValidationError([loc.at(["shards"], `the spec has ${shards.length} shards, more than the ${SLOT_COUNT} slots a cluster has: every master needs at least one slot`)]);
  }
  const problems: SpecProblem[] = [];
  const validate = schemaValidator();
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      if (e.keyword === "oneOf") continue; // its branches say what is wrong
      const path = pointerToPath(e.instancePath);
      const { message, key } = schemaMessage(e, path, loc);
      problems.push(loc.at(path, message, key));
    }
  }
  const { spec, problems: meaning } = checkMeaning(data, loc);
  problems.push(...meaning);
  if (problems.length > 0) throw new SpecValidationError(dedupe(problems));
  return spec;
}

function dedupe(p: SpecProblem[]): SpecProblem[] {
  const seen = new Set<string>();
  const out: SpecProblem[] = [];
  for (const x of [...p].sort((a, b) => a.line - b.line || a.col - b.col)) {
    const k = `${x.line}:${x.col}:${x.message}`;
    if (seen.has(k)) continue;
    // One problem per position: a schema message and a meaning check about the same value say one thing.
    if (out.some((y) => y.line === x.line && y.col === x.col && y.path === x.path)) continue;
    seen.add(k);
    out.push(x);
  }
  return out;
}

export function loadSpec(file: string): { spec: ClusterSpec; text: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EISDIR") throw new InputError(`${file} is a directory: name the spec file in it (e.g. ${file.replace(/\/$/, "")}/cluster.yaml)`);
    throw new InputError(`cannot read spec ${file}: ${(err as Error).message}`);
  }
  const spec = parseSpec(bytes, file);
  return { spec, text: bytes.toString("utf8") };
}

/** The known word nearest to `word` (at most a third of its letters off, case aside), or null. */
export function closest(word: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
