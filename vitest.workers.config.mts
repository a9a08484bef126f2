// Tests that run inside workerd (the Workers runtime) through @cloudflare/vitest-pool-workers: the
// edge API in src/. The global setups (Node) build the fixture ONNX models and provide them, and
// start real teacher hosts on loopback for the A/B tests; the D1 migrations travel in as a binding
// (TEST_MIGRATIONS) for the tests to apply to their fresh databases.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: { bindings: { TEST_MIGRATIONS: await readD1Migrations("migrations") } },
    })),
  ],
  test: {
    include: ["test/src/**/*.test.ts"],
    globalSetup: ["test/src/setup/global.ts", "test/src/setup/teacher.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
