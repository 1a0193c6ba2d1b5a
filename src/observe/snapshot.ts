import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
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
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError(`cannot read snapshot ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new InputError(`${file} is not a shardform snapshot (it is not JSON): make one with \`shardform snapshot --seed HOST:PORT --out ${basename(file) === "snapshot.json" ? "new-snapshot.json" : "snapshot.json"}\``);
  }
  const o = data as Partial<ObservedCluster>;
  if (o?.kind !== "shardform-snapshot" || !Array.isArray(o.nodes) || !Array.isArray(o.outsiders)) {
    const what = (data as { kind?: unknown })?.kind === "shardform-plan" ? "it is a plan, not a snapshot" : "it has no \"kind\": \"shardform-snapshot\"";
    throw new InputError(`${file} is not a shardform snapshot (${what}): make one with \`shardform snapshot --seed HOST:PORT --out ${basename(file) === "snapshot.json" ? "new-snapshot.json" : "snapshot.json"}\``);
  }
  if (o.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new InputError(
      `${file} has snapshot format ${String(o.formatVersion)}; this shardform reads format ${SNAPSHOT_FORMAT_VERSION}. Take the snapshot again with this version: shardform snapshot --seed HOST:PORT --out FILE`,
    );
  }
  return { disagreements: [], aliases: [], ...o } as ObservedCluster;
}
