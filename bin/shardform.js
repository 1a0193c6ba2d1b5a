#!/usr/bin/env node
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";

const entry = fileURLToPath(new URL("../dist/cli/index.js", import.meta.url));
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
