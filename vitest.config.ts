import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The scale and chaos tiers run on their own: npm run test:scale, npm run test:chaos.
    exclude: ["test/scale/**", "test/chaos/**", "**/node_modules/**"],
    globalSetup: ["test/global-setup.ts"],
    // Integration files start their own redis-server processes on disjoint port ranges,
    // so files run in parallel; tests inside a file share one cluster and run in order.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Most of a test's time is spent waiting on servers, not on the CPU: three files at once on two cores.
    maxWorkers: 3,
    // clipanion's ESM build imports a directory ("../platform"), which Node's ESM loader rejects;
    // letting Vite transform it resolves the import as the CJS build does.
    server: { deps: { inline: ["clipanion"] } },
  },
});
