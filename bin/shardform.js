#!/usr/bin/env node
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";

const entry = fileURLToPath(new URL("../dist/cli/index.js", import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write("shardform is not built yet: run `npm run build` first.\n");
  process.exit(1);
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
