// Tests of the edge API in src/: those that run inside workerd (the Workers runtime) through
// @cloudflare/vitest-pool-workers, and (*.node.test.ts) those that run workerd from Node to measure it. The global setups (Node) build the fixture ONNX models and provide them, and
// start real teacher hosts on loopback for the A/B tests; the D1 migrations travel in as a binding
// (TEST_MIGRATIONS) for the tests to apply to their fresh databases.
//
// Beside wrangler.toml's bindings (its rate limiter, the measurements queue and its consumer, the
// cron trigger), Miniflare gets a rate limiter with a small allowance for the tests to exhaust, and
// the queue consumer waits 1 s rather than 5 for a batch and retries a failed one after 1 s (its
// other settings are wrangler.toml's: an override replaces the whole consumer entry).
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { unstable_readConfig } from "wrangler";

const consumer = unstable_readConfig({ config: "wrangler.toml" }).queues.consumers?.[0];
if (!consumer) throw new Error("wrangler.toml declares no queue consumer");

/** The test rate limiter's allowance per minute (the tests read it as TEST_TEACHER_LIMIT). */
const TEST_LIMIT = 3;
/** What .dev.vars holds locally: the key that signs client ids (the tests sign their clients' ids with it). */
const TEST_CLIENT_ID_SECRET = "test-client-id-secret-0123456789abcdef";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations("migrations"),
                TEST_TEACHER_LIMIT: TEST_LIMIT,
                CLIENT_ID_SECRET: TEST_CLIENT_ID_SECRET,
              },
              ratelimits: { TEST_TEACHER_LIMITER: { simple: { limit: TEST_LIMIT, period: 60 } } },
              // For test/src/r2.test.ts, which hands it to the Worker as MODELS (the Worker entry the
              // other tests use must keep serving its bundled models).
              r2Buckets: ["TEST_MODELS"],
              queueConsumers: {
                [consumer.queue]: {
                  ...(consumer.max_batch_size === undefined ? {} : { maxBatchSize: consumer.max_batch_size }),
                  ...(consumer.max_retries === undefined ? {} : { maxRetries: consumer.max_retries }),
                  ...(consumer.dead_letter_queue === undefined ? {} : { deadLetterQueue: consumer.dead_letter_queue }),
                  maxBatchTimeout: 1,
                  retryDelay: 1,
                },
              },
            },
          })),
        ],
        test: {
          name: "workerd",
          include: ["test/src/**/*.test.ts"],
          exclude: ["test/src/**/*.node.test.ts"],
          globalSetup: ["test/src/setup/global.ts", "test/src/setup/teacher.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Node driving workerd from outside, where a figure needs the process (memory). One file at a
        // time: the memory test's peak includes garbage not yet collected, and GC falls behind when the
        // browser test competes for the 2 cores.
        test: {
          name: "workerd-from-node",
          include: ["test/src/**/*.node.test.ts"],
          environment: "node",
          pool: "forks",
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
