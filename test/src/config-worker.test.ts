/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The configuration through the Worker: a bad variable stops the API (500, named to the admin) and the
// cron jobs alike, and a fixed one starts it.
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { manifestJson, modelFiles } from "../../models/bundle.ts";
import { DEFAULT_CRONS } from "../../src/config/worker-config.ts";
import { createWorker } from "../../src/worker.ts";

const ADMIN_TOKEN = "admin-token-for-the-config-test-0123456789";
const asAdmin = { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } };

describe("the Worker's configuration", () => {
  it("refuses to serve with a bad variable, naming it to the admin, and serves once it is fixed", async () => {
    const worker = createWorker(manifestJson, modelFiles);
    const bad = await worker.fetch!(
      new Request("http://x/v2", asAdmin),
      { ADMIN_TOKEN, WARMUP_RUNS: "many" },
      createExecutionContext(),
    );
    expect(bad.status).toBe(500);
    expect(await bad.json()).toEqual({
      error: "server misconfigured",
      detail: 'WARMUP_RUNS must be an integer from 0 to 1000, got "many"',
    });
    const fixed = await worker.fetch!(
      new Request("http://x/v2", asAdmin),
      { ADMIN_TOKEN, WARMUP_RUNS: "0" },
      createExecutionContext(),
    );
    expect(fixed.status).toBe(200);
  });

  it("refuses to run a cron job with a bad variable, naming it", async () => {
    const worker = createWorker(manifestJson, modelFiles);
    const run = worker.scheduled!(
      createScheduledController({ scheduledTime: Date.now(), cron: DEFAULT_CRONS.rollup }),
      { MEASUREMENT_RETENTION_HOURS: "3 days" },
      createExecutionContext(),
    );
    await expect(run).rejects.toThrow('MEASUREMENT_RETENTION_HOURS must be a positive integer, got "3 days"');
  });
});
