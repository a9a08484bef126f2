// Warm-up of a new session on a synthetic input. Blocking: it is part of the session's load, so the
// first request waits for it and every request runs warm code. Background: the request that made the
// session is answered first, requests arriving meanwhile go ahead of the warm-up runs and get the
// right answers. WARMUP_MODE chooses; WARMUP_RUNS caps it or turns it off.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app.ts";
import type { Engine } from "../../src/models/engine.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import { SerialRunner } from "../../src/models/serial.ts";
import { ModelStore } from "../../src/models/store.ts";
import { warmupFromEnv } from "../../src/config/worker-config.ts";
import { DEFAULT_WARMUP, type WarmupResult, isSteady, syntheticInput } from "../../src/models/warmup.ts";
import { createWorker } from "../../src/worker.ts";
import { entryOf, fixtureFiles, fixtures, inferBody, postJson } from "./helpers.ts";

const grey = entryOf("grey28");
const ref = fixtures.references.find((r) => r.model === "grey28" && r.dims[0] === 3)!;
const synthetic = syntheticInput(grey).input;

/** onnxruntime-web, logging each run: "warm-up" when its input is the synthetic one, else "request". */
function loggingEngine(log: string[]): Engine {
  return {
    async createSession(bytes, entry) {
      const session = await ortWebEngine.createSession(bytes, entry);
      return {
        run: (input, dims) => {
          log.push(
            input.length === synthetic.length && input.every((v, i) => v === synthetic[i]) ? "warm-up" : "request",
          );
          return session.run(input, dims);
        },
      };
    },
  };
}

function warmStore(log: string[], warmup: Partial<typeof DEFAULT_WARMUP>, results: WarmupResult[] = []) {
  return new ModelStore(fixtures.manifest, fixtureFiles, loggingEngine(log), {
    warmup,
    onWarmup: (r) => results.push(r),
  });
}

async function logits(res: Response): Promise<number[]> {
  expect(res.status).toBe(200);
  const body = (await res.json()) as { outputs: { name: string; data: number[] }[] };
  return body.outputs.find((o) => o.name === "logits")!.data;
}

function expectReference(actual: number[]) {
  expect(actual).toHaveLength(ref.logits.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - ref.logits[i]!)).toBeLessThan(1e-4);
}

describe("steady speed", () => {
  const options = { window: 3, tolerance: 0.1 };
  it("is two windows of run times within the tolerance", () => {
    expect(isSteady([30, 20, 9, 5, 5, 5, 5, 5, 5], options)).toBe(true);
    expect(isSteady([30, 20, 9, 8, 5, 5, 5], options)).toBe(false);
    expect(isSteady([9, 9, 9, 5, 5, 5], options)).toBe(false);
    expect(isSteady([5, 5], options)).toBe(false);
  });

  it("is never a clock that did not move (Cloudflare's may not within a request)", () => {
    expect(isSteady([0, 0, 0, 0, 0, 0], options)).toBe(false);
  });
});

describe("the run queue", () => {
  it("runs one job at a time, requests before background work", async () => {
    const runner = new SerialRunner();
    const order: string[] = [];
    let running = 0;
    const job = (name: string) => async () => {
      running++;
      expect(running).toBe(1);
      order.push(name);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      return name;
    };
    const all = [
      runner.run(job("b1"), "background"),
      runner.run(job("b2"), "background"),
      runner.run(job("r1")),
      runner.run(job("r2")),
    ];
    expect(await Promise.all(all)).toEqual(["b1", "b2", "r1", "r2"]);
    // b1 had started; the requests went ahead of b2.
    expect(order).toEqual(["b1", "r1", "r2", "b2"]);
  });

  it("passes a job's failure to its caller only", async () => {
    const runner = new SerialRunner();
    const failed = runner.run(async () => {
      throw new Error("broken run");
    });
    await expect(failed).rejects.toThrow("broken run");
    expect(await runner.run(async () => 7)).toBe(7);
  });
});

describe("background warm-up", () => {
  it("starts after the first request's run, runs the synthetic input in the background, and stops at steady speed or the cap", async () => {
    const log: string[] = [];
    const results: WarmupResult[] = [];
    const store = warmStore(log, { mode: "background", maxRuns: 40, minRuns: 10, window: 5, tolerance: 0.5 }, results);
    const app = createApp({ store });
    expect(store.background()).toBeUndefined();
    expectReference(
      await logits(await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input))),
    );
    // The request's own run came first; the warm-up is still going when the answer is out.
    expect(log[0]).toBe("request");
    const background = store.background();
    expect(background).toBeDefined();
    await background;
    const result = (await store.warmup(grey))!;
    expect(results).toEqual([result]);
    expect(result.model).toBe("grey28");
    expect(result.runs).toBeGreaterThanOrEqual(10);
    expect(result.runs).toBeLessThanOrEqual(40);
    if (result.runs < 40) expect(result.steady).toBe(true);
    expect(log.filter((l) => l === "warm-up")).toHaveLength(result.runs);
    // Once per session: later requests do not start another.
    await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input));
    expect(store.background()).toBeUndefined();
    expect(log.filter((l) => l === "warm-up")).toHaveLength(result.runs);
  });

  it("lets requests that arrive meanwhile go first, with the right answers", async () => {
    const log: string[] = [];
    const store = warmStore(log, { mode: "background", maxRuns: 30, minRuns: 30 });
    const app = createApp({ store });
    await logits(await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input)));
    const during = await Promise.all(
      Array.from({ length: 6 }, () =>
        postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input)),
      ),
    );
    for (const res of during) expectReference(await logits(res));
    await store.background();
    // Each request waited for at most the one warm-up run already going, so all six ran before the
    // warm-up's last runs.
    const lastRequest = log.lastIndexOf("request");
    expect(log.slice(0, lastRequest + 1).filter((l) => l === "warm-up").length).toBeLessThanOrEqual(2);
    expect(log.filter((l) => l === "warm-up")).toHaveLength(30);
  });

  it("is off by default in the store, and a failed load starts none", async () => {
    const log: string[] = [];
    const off = new ModelStore(fixtures.manifest, fixtureFiles, loggingEngine(log));
    await postJson(createApp({ store: off }), "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input));
    expect(off.background()).toBeUndefined();
    expect(log).toEqual(["request"]);
    const missing = new ModelStore(fixtures.manifest, {}, loggingEngine(log), { warmup: { maxRuns: 10 } });
    expect(
      (
        await postJson(
          createApp({ store: missing }),
          "/v2/models/grey28/infer",
          inferBody("grey28", ref.dims, ref.input),
        )
      ).status,
    ).toBe(503);
    expect(missing.background()).toBeUndefined();
  });

  it("stops when its session is replaced by a new version", async () => {
    const log: string[] = [];
    const store = warmStore(log, { mode: "background", maxRuns: 200, minRuns: 200 });
    await postJson(createApp({ store }), "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input));
    const background = store.background()!;
    store.replace({ ...fixtures.manifest, models: fixtures.manifest.models.filter((m) => m.name !== "grey28") });
    await background;
    expect(log.filter((l) => l === "warm-up").length).toBeLessThan(200);
    expect(await store.warmup(grey)).toBeUndefined();
  });
});

describe("blocking warm-up", () => {
  it("is part of the session's load: the first request waits for it and runs warm, and nothing is left in the background", async () => {
    const log: string[] = [];
    const results: WarmupResult[] = [];
    const store = warmStore(log, { mode: "blocking", maxRuns: 40, minRuns: 10, window: 5, tolerance: 0.5 }, results);
    const app = createApp({ store });
    const first = await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input));
    // Its Server-Timing shows the wait as the session's load, not as inference.
    expect(first.headers.get("Server-Timing")).toMatch(/(^|,)load;dur=/);
    expectReference(await logits(first));
    expect(store.background()).toBeUndefined();
    const result = (await store.warmup(grey))!;
    expect(results).toEqual([result]);
    expect(result.runs).toBeGreaterThanOrEqual(10);
    expect(log).toEqual([...Array(result.runs).fill("warm-up"), "request"]);
    await postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input));
    expect(log.filter((l) => l === "warm-up")).toHaveLength(result.runs);
  });

  it("warms up once when the first requests arrive together, and all of them get the right answers", async () => {
    const log: string[] = [];
    const store = warmStore(log, { mode: "blocking", maxRuns: 12, minRuns: 12 });
    const app = createApp({ store });
    const together = await Promise.all(
      Array.from({ length: 5 }, () =>
        postJson(app, "/v2/models/grey28/infer", inferBody("grey28", ref.dims, ref.input)),
      ),
    );
    for (const res of together) expectReference(await logits(res));
    expect(log).toEqual([...Array(12).fill("warm-up"), ...Array(5).fill("request")]);
  });

  it("a failed load starts none, and the request gets the load's error", async () => {
    const log: string[] = [];
    const missing = new ModelStore(fixtures.manifest, {}, loggingEngine(log), {
      warmup: { mode: "blocking", maxRuns: 10 },
    });
    const res = await postJson(
      createApp({ store: missing }),
      "/v2/models/grey28/infer",
      inferBody("grey28", ref.dims, ref.input),
    );
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toBe('model "grey28" is unavailable');
    expect(log).toEqual([]);
    expect(await missing.warmup(grey)).toBeUndefined();
  });
});

describe("WARMUP_MODE", () => {
  it("is blocking by default, background when asked, and a configuration error otherwise", () => {
    expect(warmupFromEnv({}).mode).toBe("blocking");
    expect(warmupFromEnv({ WARMUP_MODE: "background" }).mode).toBe("background");
    expect(warmupFromEnv({ WARMUP_MODE: "background", WARMUP_RUNS: "20" })).toMatchObject({
      mode: "background",
      maxRuns: 20,
    });
    expect(() => warmupFromEnv({ WARMUP_MODE: "eager" })).toThrow(
      'WARMUP_MODE must be one of blocking, background, got "eager"',
    );
  });
});

describe("WARMUP_RUNS", () => {
  it("sets the cap; 0 turns warm-up off; anything else is a configuration error", () => {
    expect(warmupFromEnv({})).toEqual(DEFAULT_WARMUP);
    expect(warmupFromEnv({ WARMUP_RUNS: "20" })).toMatchObject({ maxRuns: 20, minRuns: 20 });
    expect(warmupFromEnv({ WARMUP_RUNS: "100" })).toMatchObject({ maxRuns: 100, minRuns: DEFAULT_WARMUP.minRuns });
    expect(warmupFromEnv({ WARMUP_RUNS: "0" })).toMatchObject({ maxRuns: 0 });
    expect(() => warmupFromEnv({ WARMUP_RUNS: "-1" })).toThrow(
      'WARMUP_RUNS must be an integer from 0 to 1000, got "-1"',
    );
    expect(() => warmupFromEnv({ WARMUP_RUNS: "lots" })).toThrow(/WARMUP_RUNS/);
  });

  it("in background mode the Worker hands the warm-up to waitUntil, and answers 500 naming a bad value to the admin", async () => {
    const worker = createWorker(fixtures.manifest, fixtureFiles);
    const ctx = createExecutionContext();
    const logged = vi.spyOn(console, "log");
    try {
      const res = await worker.fetch!(
        new Request("http://x/v2/models/grey28/infer", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(inferBody("grey28", ref.dims, ref.input)),
        }),
        { WARMUP_RUNS: "12", WARMUP_MODE: "background" },
        ctx,
      );
      expectReference(await logits(res));
      // The warm-up outlives the response: waitUntil holds the request's context open for it.
      await waitOnExecutionContext(ctx);
      expect(logged.mock.calls.map((c) => String(c[0]))).toContainEqual(
        expect.stringMatching(/^warm-up: model "grey28" 12 runs in \d+ ms/),
      );
    } finally {
      logged.mockRestore();
    }
    const token = "admin-token-for-the-warm-up-test";
    const bad = createWorker(fixtures.manifest, fixtureFiles);
    const refused = await bad.fetch!(
      new Request("http://x/v2", { headers: { Authorization: `Bearer ${token}` } }),
      { WARMUP_RUNS: "yes", ADMIN_TOKEN: token },
      createExecutionContext(),
    );
    expect(refused.status).toBe(500);
    expect(await refused.json()).toEqual({
      error: "server misconfigured",
      detail: 'WARMUP_RUNS must be an integer from 0 to 1000, got "yes"',
    });
  });
});
