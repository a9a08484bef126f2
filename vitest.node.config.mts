// Tests that run in Node: training/, the teacher host, the manifest schema, the training benchmark, scripts/.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "test/training/**/*.test.ts",
      "test/teacher/**/*.test.ts",
      "test/models/**/*.test.ts",
      "test/bench/**/*.test.ts",
      "test/scripts/**/*.test.ts",
    ],
    environment: "node",
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
