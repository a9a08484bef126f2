// Where measurements go, in workerd: straight to D1 without a queue (one transaction per write), or
// through the measurements queue to the Worker's consumer, which writes a batch per transaction. A
// shadow's student row is written when the student answers; its teacher row follows, cut (and
// recorded as a fault) when the teacher would outlive waitUntil. Retried batches never duplicate.
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import type { RunRow } from "../../src/measurements/records.ts";
import worker from "../../src/index.ts";
import { abApp, asAdmin, bindings, classify, hosts, migrate, png, report } from "./ab-helpers.ts";
import { fixtureStore } from "./helpers.ts";

const app = abApp();
beforeAll(migrate);

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (sql: string, ...args: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...args)
    .first<{ n: number }>())!.n;
const rowsOf = (requestIds: string[]) =>
  count(`SELECT COUNT(*) AS n FROM runs WHERE request_id IN (${requestIds.map(() => "?").join(",")})`, ...requestIds);
const transactions = (source: string, since: number) =>
  count("SELECT COUNT(*) AS n FROM writes WHERE source = ?1 AND ts >= ?2", source, since);

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await wait(200);
  }
}

function row(requestId: string, arm: "student" | "teacher", ts: number): RunRow {
  return {
    requestId,
    ts,
    mode: "shadow",
    reason: arm === "student" ? "split" : "shadow",
    status: 200,
    arm,
    model: arm === "student" ? "grey28" : "teacher28",
    version: "1",
    latencyMs: 5,
    ok: true,
    fault: null,
    top1: 3,
    served: arm === "student",
  };
}

describe("without a queue", () => {
  it("writes each request's rows in one transaction of its own", async () => {
    const since = Date.now();
    for (let i = 0; i < 3; i++) await classify(app, i, { "X-Force-Arm": "student", ...asAdmin });
    expect((await report(app, since)).requests).toBe(3);
    expect(await transactions("direct", since)).toBe(3);
  });
});

describe("shadow rows", () => {
  it("writes the student's row when the student answers, and the teacher's when the teacher does", async () => {
    const since = Date.now();
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request("http://edge.test/v1/classify", {
        method: "POST",
        headers: { "X-Force-Arm": "student", ...asAdmin },
        body: png(5),
      }),
      bindings({ TEACHER_URL: hosts.slowUrl, SHADOW_PERCENT: "100", TEACHER_TIMEOUT_MS: "10000" }),
      ctx,
    );
    expect(response.status).toBe(200);
    // The slow teacher answers after 3 s; the student's row is there long before.
    await until(
      "the student row is written",
      async () => (await count("SELECT COUNT(*) AS n FROM runs WHERE ts >= ?1 AND arm = 'student'", since)) === 1,
      2_000,
    );
    expect(await count("SELECT COUNT(*) AS n FROM runs WHERE ts >= ?1 AND arm = 'teacher'", since)).toBe(0);
    await waitOnExecutionContext(ctx);
    const r = await report(app, since);
    expect(r.rows.find((x) => x.arm === "teacher")).toMatchObject({ count: 1, errors: 0 });
    expect(r.rows.find((x) => x.arm === "student")!.agreement!.pairs).toBe(1);
  });

  it("cuts a teacher that would outlive waitUntil, and records the cut as a fault", async () => {
    const short = createApp({ store: fixtureStore(), abRouting: { teachers: [hosts.entry], shadowBudgetMs: 300 } });
    const since = Date.now();
    const { response, responseMs, settledMs } = await classify(
      short,
      6,
      { "X-Force-Arm": "student", ...asAdmin },
      { TEACHER_URL: hosts.slowUrl, SHADOW_PERCENT: "100", TEACHER_TIMEOUT_MS: "10000" },
    );
    expect(response.status).toBe(200);
    // The slow teacher answers after 3 s: the answer does not wait for it, and neither does
    // waitUntil (the shadow is cut at its 300 ms budget). Margins wide enough for a loaded machine.
    expect(responseMs).toBeLessThan(1_500);
    expect(settledMs).toBeLessThan(2_500);
    const r = await report(app, since);
    expect(r.rows.find((x) => x.arm === "teacher")).toMatchObject({ count: 1, errors: 1, faults: { cut: 1 } });
    expect(r.rows.find((x) => x.arm === "student")).toMatchObject({ count: 1, served: 1 });
  });
});

describe("the queue consumer", () => {
  const deliver = async (messages: { id: string; body: unknown }[], attempts = 1) => {
    const batch = createMessageBatch(
      "narrowdeep-measurements",
      messages.map((m) => ({ ...m, timestamp: new Date(), attempts })),
    );
    const ctx = createExecutionContext();
    await worker.queue!(batch, env as never, ctx);
    return getQueueResult(batch, ctx);
  };

  it("writes a whole batch in one transaction, and drops what is not a measurement", async () => {
    const since = Date.now();
    const ids = Array.from({ length: 40 }, () => crypto.randomUUID());
    const result = await deliver([
      ...ids.map((id, i) => ({ id: `m${i}`, body: { rows: [row(id, "student", since), row(id, "teacher", since)] } })),
      { id: "junk", body: { rows: [{ requestId: "x" }] } },
      { id: "nothing", body: "hello" },
    ]);
    expect(result.explicitAcks.sort()).toEqual([...ids.map((_, i) => `m${i}`), "junk", "nothing"].sort());
    expect(result.retryMessages).toEqual([]);
    expect(await rowsOf(ids)).toBe(80);
    expect(await transactions("queue", since)).toBe(1);
  });

  it("keeps rows from a deployment that did not record reason and version, as unrecorded", async () => {
    const id = crypto.randomUUID();
    const { reason: _reason, version: _version, ...older } = row(id, "student", Date.now());
    const result = await deliver([
      { id: "older", body: { rows: [older] } },
      { id: "bad-reason", body: { rows: [{ ...row(id, "teacher", Date.now()), reason: "because" }] } },
    ]);
    expect(result.explicitAcks.sort()).toEqual(["bad-reason", "older"]);
    const stored = await env.DB.prepare("SELECT arm, reason, version FROM runs WHERE request_id = ?1").bind(id).all();
    expect(stored.results).toEqual([{ arm: "student", reason: "unrecorded", version: "" }]);
  });

  it("retries a batch when D1 fails, loses nothing, and writes nothing twice", async () => {
    const since = Date.now();
    const ids = Array.from({ length: 10 }, () => crypto.randomUUID());
    const messages = ids.map((id, i) => ({ id: `r${i}`, body: { rows: [row(id, "student", since)] } }));
    // A real D1 failure: the transaction's second statement finds no table.
    await env.DB.prepare("ALTER TABLE writes RENAME TO writes_away").run();
    const failed = await deliver(messages);
    await env.DB.prepare("ALTER TABLE writes_away RENAME TO writes").run();
    expect(failed.explicitAcks).toEqual([]);
    expect(failed.retryMessages.map((m: { msgId: string }) => m.msgId).sort()).toEqual(
      messages.map((m) => m.id).sort(),
    );
    expect(await rowsOf(ids)).toBe(0); // rolled back as a whole
    // The retry, and a second delivery of half of it (at-least-once): every row once.
    expect((await deliver(messages, 2)).explicitAcks).toHaveLength(10);
    expect((await deliver(messages.slice(0, 5), 3)).explicitAcks).toHaveLength(5);
    expect(await rowsOf(ids)).toBe(10);
  });
});

describe("through the queue", () => {
  const queued = { MEASUREMENTS: env.MEASUREMENTS };

  it("gets every request's rows to D1 in fewer transactions than requests", async () => {
    const since = Date.now();
    const n = 12;
    for (let i = 0; i < n; i++)
      await classify(app, i, { "X-Force-Arm": "student", ...asAdmin }, { ...queued, SHADOW_PERCENT: "50" });
    await until(`${n} requests are in the report`, async () => (await report(app, since)).requests === n);
    const r = await report(app, since);
    expect(r.writes.transactions).toBeLessThan(n);
    expect(await transactions("queue", since)).toBe(r.writes.transactions);
    expect(await transactions("direct", since)).toBe(0);
  });

  it("writes straight to D1 when the queue refuses a message", async () => {
    const since = Date.now();
    const refusing = {
      send: () => Promise.reject(new Error("queue unavailable (test)")),
      sendBatch: () => Promise.reject(new Error("queue unavailable (test)")),
    };
    await classify(
      app,
      50,
      { "X-Force-Arm": "student", ...asAdmin },
      { MEASUREMENTS: refusing as unknown as typeof env.MEASUREMENTS },
    );
    expect((await report(app, since)).requests).toBe(1);
    expect(await transactions("direct", since)).toBe(1);
  });

  it("loses nothing across a consumer failure: the batch comes back and is written once", async () => {
    const since = Date.now();
    await env.DB.prepare("ALTER TABLE writes RENAME TO writes_away").run();
    for (let i = 0; i < 6; i++) await classify(app, 100 + i, { "X-Force-Arm": "student", ...asAdmin }, queued);
    await wait(2_500); // at least one delivery fails meanwhile
    await env.DB.prepare("ALTER TABLE writes_away RENAME TO writes").run();
    await until("6 requests are in the report", async () => (await report(app, since)).requests === 6);
    expect(await count("SELECT COUNT(*) AS n FROM runs WHERE ts >= ?1", since)).toBe(6);
  });
});
