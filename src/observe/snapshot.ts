import { readFileSync, writeFileSync } from "node:fs";
import stableStringify from "json-stable-stringify";
import { InputError } from "../errors.js";
import { SNAPSHOT_FORMAT_VERSION, type ObservedCluster } from "./types.js";

export function serializeSnapshot(o: ObservedCluster): string {
  return stableStringify(o, { space: 2 }) + "\n";
}

export function writeSnapshot(file: string, o: ObservedCluster): void {
  writeFileSync(file, serializeSnapshot(o));
}

export function readSnapshot(file: string): ObservedCluster {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new InputError(`cannot read snapshot ${file}: ${(err as Error).message}`);
  }
  const o = data as Partial<ObservedCluster>;
  if (o?.kind !== "shardform-snapshot" || !Array.isArray(o.nodes) || !Array.isArray(o.outsiders)) {
    throw new InputError(`${file} is not a shardform snapshot: make one with \`shardform snapshot --seed HOST:PORT --out ${file}\``);
  }
  if (o.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new InputError(`${file} has snapshot format ${String(o.formatVersion)}; this shardform reads format ${SNAPSHOT_FORMAT_VERSION}`);
  }
  return { disagreements: [], ...o } as ObservedCluster;
}
