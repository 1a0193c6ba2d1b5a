// After tsc: what makes every command start sooner.
//  - The CLI (dist/cli/index.js, as tsc wrote it, with its npm dependencies) bundled into one file,
//    dist/cli.bundle.mjs, which bin/shardform.js runs: loading one file instead of some three hundred
//    modules takes about a tenth of a second off every start. The library (dist/index.js) is not bundled.
//  - The spec schema's validator written out as code (ajv's standalone code), with the schema's digest,
//    as dist/spec/cluster-schema.validate.cjs: compiling the schema took about 20 ms at every start
//    (src/spec/schema-validator.ts loads this file when the digest matches).
// Run by `npm run build`, after tsc.
import { readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";
import { Ajv } from "ajv";
import standaloneCode from "ajv/dist/standalone/index.js";
import { AJV_OPTIONS, PRECOMPILED_URL, SCHEMA_URL, schemaDigest } from "../dist/spec/schema-validator.js";

const text = readFileSync(SCHEMA_URL, "utf8");
const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
const code = standaloneCode(ajv, ajv.compile(JSON.parse(text)));
writeFileSync(PRECOMPILED_URL, `${code}\nmodule.exports.schemaSha256 = ${JSON.stringify(schemaDigest(text))};\n`);

await build({
  entryPoints: ["dist/cli/index.js"],
  outfile: "dist/cli.bundle.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // CommonJS dependencies (ioredis) require Node's built-in modules; an ES module has no `require`.
  banner: { js: 'import { createRequire as __shardformRequire } from "node:module"; const require = __shardformRequire(import.meta.url);' },
  legalComments: "none",
  logLevel: "warning",
});
