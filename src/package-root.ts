/**
 * Files that ship beside the code (package.json, schemas/), found from wherever this module runs:
 * dist/ as tsc writes it, the CLI bundle dist/cli.bundle.mjs, or src/ under the tests. The package's
 * root is the nearest folder upward with shardform's package.json.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "shardform") return dir;
    if (dirname(dir) === dir) throw new Error(`shardform's package.json was not found above ${from}: the installation is incomplete`);
  }
}

export const PACKAGE_ROOT: string = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A file of the package, by its path from the package's root. */
export function packageFile(path: string): URL {
  return pathToFileURL(join(PACKAGE_ROOT, path));
}
