/**
 * The validator of schemas/cluster.schema.json. Compiling it with ajv costs about 20 ms at every
 * start, so the build writes it out once as code (scripts/bundle.mjs: dist/spec/cluster-schema.validate.cjs,
 * ajv's standalone code, with the schema's digest); a start loads that file when its digest matches the
 * schema beside it, and compiles the schema otherwise (from src, or after the schema changed).
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Ajv, type Options, type ValidateFunction } from "ajv";
import { packageFile } from "../package-root.js";

export const SCHEMA_URL = packageFile("schemas/cluster.schema.json");
export const PRECOMPILED_URL = packageFile("dist/spec/cluster-schema.validate.cjs");

/**
 * The options of every compile, at run time and at build time alike. The schema itself is checked
 * against JSON Schema's meta-schema by a unit test, not on every run.
 */
export const AJV_OPTIONS: Options = { allErrors: true, strict: true, verbose: true, validateSchema: false };

export function schemaDigest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

let validator: ValidateFunction | undefined;

export function schemaValidator(): ValidateFunction {
  if (!validator) {
    const text = readFileSync(SCHEMA_URL, "utf8");
    validator = precompiled(text) ?? new Ajv(AJV_OPTIONS).compile(JSON.parse(text) as object);
  }
  return validator;
}

/** The build's validator, if it was made from this very schema. */
export function precompiled(schemaText: string): ValidateFunction | undefined {
  const file = fileURLToPath(PRECOMPILED_URL);
  if (!existsSync(file)) return undefined;
  try {
    const v = createRequire(import.meta.url)(file) as ValidateFunction & { schemaSha256?: string };
    return v.schemaSha256 === schemaDigest(schemaText) ? v : undefined;
  } catch {
    return undefined;
  }
}
