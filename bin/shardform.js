#!/usr/bin/env node
import { fileURLToPath } from "node:url";
import { existsSync, statSync } from "node:fs";

// The CLI bundled into one file (scripts/bundle.mjs) starts faster; tsc's output runs it as well, and
// does whenever it is newer than the bundle (tsc run alone after a change).
const compiled = fileURLToPath(new URL("../dist/cli/index.js", import.meta.url));
const bundle = fileURLToPath(new URL("../dist/cli.bundle.mjs", import.meta.url));
const fresh = existsSync(bundle) && (!existsSync(compiled) || statSync(bundle).mtimeMs >= statSync(compiled).mtimeMs);
const entry = fresh ? bundle : compiled;
if (!existsSync(entry)) {
  process.stderr.write("shardform is not built yet: run `npm run build` first.\n");
  process.exit(1);
}
// Output piped into a command that stops reading (| head) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
