/**
 * YAML -> ClusterSpec. Three passes, each reporting every problem it finds with
 * file:line:col: YAML syntax, the JSON schema (schemas/cluster.schema.json), then meaning.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, type Document, type Node } from "yaml";
import { SpecValidationError, InputError, type SpecProblem } from "../errors.js";
import { checkMeaning, type RawSpec } from "./semantic.js";
import type { ClusterSpec } from "./types.js";

const SCHEMA_URL = new URL("../../schemas/cluster.schema.json", import.meta.url);
let validator: ReturnType<Ajv["compile"]> | undefined;

function schemaValidator(): ReturnType<Ajv["compile"]> {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_URL, "utf8")));
  }
  return validator;
}

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

  /** Position of the node at `path`, or of the deepest existing parent; with `key`, of that key in the map. */
  at(path: (string | number)[], message: string, key?: string): SpecProblem {
    let node: unknown = this.doc.contents;
    let offset = 0;
    const nodeOffset = (n: unknown): number | undefined =>
      (n as Node | null)?.range ? (n as Node).range![0] : undefined;
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
    return {
      file: this.file,
      line: pos.line,
      col: pos.col,
      path: "/" + path.join("/"),
      message,
    };
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

function schemaMessage(e: ErrorObject, path: (string | number)[]): { message: string; key?: string } {
  const where = path.length ? path.join(".") : "the spec";
  const last = path[path.length - 1];
  switch (e.keyword) {
    case "required": {
      const prop = (e.params as { missingProperty: string }).missingProperty;
      if (prop === "master") return { message: `shard ${String(last)} has no master: add \`master: host:port\`` };
      if (prop === "seeds") return { message: `cluster.seeds is missing: list at least one reachable node, e.g. seeds: ["127.0.0.1:7000"]` };
      return { message: `${where} is missing "${prop}": add it` };
    }
    case "additionalProperties": {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      return { message: `unknown key "${prop}" in ${where}: remove it or check its spelling (see schemas/cluster.schema.json)`, key: prop };
    }
    case "pattern":
      if (path.includes("slots"))
        return { message: `${where} is not a slot range: write "N" or "A-B" with 0 <= A <= B <= 16383` };
      if (path.includes("passwordEnv")) return { message: `${where} is not an environment variable name` };
      return { message: `${where} is not a node address: ${ADDR_HINT}` };
    case "type":
      return { message: `${where} must be ${(e.params as { type: string }).type}` };
    case "minItems":
      if (last === "shards") return { message: `shards is empty: describe at least one shard with a master` };
      return { message: `${where} must not be empty` };
    case "minimum":
    case "maximum":
      return { message: `${where} must be between 0 and 100 (percent)` };
    default:
      return { message: `${where} ${e.message ?? "is invalid"}` };
  }
}

/** Parses and checks a spec; throws SpecValidationError listing every problem. Pure but for the schema read. */
export function parseSpec(text: string, file: string): ClusterSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SpecValidationError(
      doc.errors.map((err) => {
        const pos = lines.linePos(err.pos[0]);
        return { file, line: pos.line, col: pos.col, path: "", message: `YAML syntax: ${err.message.split("\n")[0]}` };
      }),
    );
  }
  const loc = new Locator(file, doc, lines);
  const data: unknown = doc.toJS();
  if (data === null || data === undefined || typeof data !== "object" || Array.isArray(data)) {
    throw new SpecValidationError([loc.at([], `the spec must be a mapping with "cluster" and "shards" (see cluster.example.yaml)`)]);
  }
  const validate = schemaValidator();
  if (!validate(data)) {
    const seen = new Set<string>();
    const problems: SpecProblem[] = [];
    for (const e of validate.errors ?? []) {
      const path = pointerToPath(e.instancePath);
      const { message, key } = schemaMessage(e, path);
      const p = loc.at(path, message, key);
      const k = `${p.line}:${p.col}:${p.message}`;
      if (!seen.has(k)) {
        problems.push(p);
        seen.add(k);
      }
    }
    throw new SpecValidationError(sortProblems(problems));
  }
  const { spec, problems } = checkMeaning(data as RawSpec, loc);
  if (problems.length > 0) throw new SpecValidationError(sortProblems(problems));
  return spec;
}

function sortProblems(p: SpecProblem[]): SpecProblem[] {
  return [...p].sort((a, b) => a.line - b.line || a.col - b.col);
}

export function loadSpec(file: string): { spec: ClusterSpec; text: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError(`cannot read spec ${file}: ${(err as Error).message}`);
  }
  return { spec: parseSpec(text, file), text };
}
