// Bundles the CLI (dist/cli/index.js, as tsc wrote it, with its npm dependencies) into one file,
// dist/cli.bundle.mjs, which bin/shardform.js runs: loading one file instead of some three hundred
// modules takes about a tenth of a second off every command's start. The library (dist/index.js) is
// not bundled. Run by `npm run build`, after tsc.
import { build } from "esbuild";

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
