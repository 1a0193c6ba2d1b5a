import { defineConfig } from "vitest/config";

// The scale tier (`npm run test:scale`): 80 server processes and a million keys, so one file, run alone.
export default defineConfig({
  test: {
    include: ["test/scale/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: "forks",
    maxWorkers: 1,
    server: { deps: { inline: ["clipanion"] } },
  },
});
