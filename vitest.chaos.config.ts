import { defineConfig } from "vitest/config";

// The chaos tier (`npm run test:chaos`): rounds of scale-out and scale-in under faults with live clients,
// one file, run alone (see test/chaos/chaos.test.ts for CHAOS_SEED, CHAOS_ROUNDS and CHAOS_REPORT).
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    pool: "forks",
    maxWorkers: 1,
    server: { deps: { inline: ["clipanion"] } },
    // The live clients are an ioredis Cluster, as an application's would be: when a node is killed or
    // paused, ioredis rejects some of its own internal commands with no handler. Those are the client's,
    // not shardform's; any other unhandled error still fails the run.
    onUnhandledError: (error) => (/node_modules\/ioredis\//.test(error.stack ?? "") && !/\/src\//.test(error.stack ?? "") ? false : undefined),
  },
});
