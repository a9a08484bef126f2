// Tests that run inside workerd (the Workers runtime) through @cloudflare/vitest-pool-workers: the
// edge API in src/. The global setup (Node) builds the fixture ONNX models and provides them.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
    }),
  ],
  test: {
    include: ["test/src/**/*.test.ts"],
    globalSetup: ["test/src/setup/global.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
