// The cron trigger's roll-up, in workerd through the Worker's scheduled handler: raw rows past the
// retention period become hourly aggregates and are deleted, and the report over the same window
// says the same before and after (counts, faults, fallbacks, agreement, write transactions exactly;
// latency percentiles within the histogram's 5%).
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import type { Fault, RunRow } from "../../src/measurements/records.ts";
import { type Report, buildReport } from "../../src/measurements/report.ts";
import { HOUR_MS } from "../../src/measurements/rollup.ts";
import { insertRows } from "../../src/measurements/write.ts";
import { migrate } from "./ab-helpers.ts";

beforeAll(migrate);

const T0 = Date.UTC(2026, 0, 5, 10); // an hour's start, long past any retention
const NOW = T0 + 10 * 24 * HOUR_MS;

/**
 * A day's worth of rows in hours 0-3 after T0: shadowed pairs, compared pairs, fallbacks, faults,
 * varied latencies, two versions of the student and every reason, so that the aggregates must keep
 * version and reason apart.
 */
function rows(prefix: string, hours = 4): RunRow[] {
  const out: RunRow[] = [];
  let n = 0;
  for (let h = 0; h < hours; h++) {
    const version = h % 2 === 0 ? "v1" : "v2";
    for (let i = 0; i < 25; i++, n++) {
      const requestId = `${prefix}-${h}-${i}`;
      const ts = T0 + h * HOUR_MS + i * 60_000;
      const base = { requestId, ts, status: 200 };
      const studentLatency = 1.3 + ((n * 37) % 90) / 7;
      const teacherLatency = 40 + ((n * 53) % 400);
      const student = {
        arm: "student" as const,
        model: "grey28",
        version,
        latencyMs: studentLatency,
        ok: true as const,
        fault: null,
        top1: i % 10,
        served: true,
      };
      const teacher = {
        arm: "teacher" as const,
        model: "teacher28",
        version: "t1",
        latencyMs: teacherLatency,
        ok: true as const,
        fault: null,
        top1: i % 3 === 0 ? (i + 1) % 10 : i % 10,
      };
      if (i % 5 === 0) {
        // The teacher arm failed; the student answered.
        const fault: Fault = i % 10 === 0 ? "timeout" : "circuit_open";
        out.push({
          ...base,
          ...teacher,
          mode: "ab",
          reason: "split",
          latencyMs: fault === "timeout" ? 1000 : 0,
          ok: false,
          fault,
          top1: null,
          served: false,
        });
        out.push({ ...base, ...student, mode: "ab", reason: "split" });
      } else if (i % 7 === 0) {
        out.push({ ...base, ...student, mode: "compare", reason: "compare" });
        out.push({ ...base, ...teacher, mode: "compare", reason: "compare", served: true });
      } else {
        out.push({ ...base, ...student, mode: "shadow", reason: i % 2 === 0 ? "split" : "forced" });
        out.push({ ...base, ...teacher, mode: "shadow", reason: "shadow", served: false });
      }
    }
  }
  return out;
}

async function rollUpAt(scheduledTime: number, retentionHours = "72") {
  const ctx = createExecutionContext();
  await worker.scheduled!(
    createScheduledController({ scheduledTime, cron: "5 * * * *" }),
    { ...env, MEASUREMENT_RETENTION_HOURS: retentionHours } as never,
    ctx,
  );
}

const rawCount = async () =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM runs WHERE ts < ?1").bind(NOW).first<{ n: number }>())!.n;

function expectSameReport(after: Report, before: Report): void {
  expect({ ...after, rows: undefined }).toEqual({ ...before, rows: undefined });
  expect(after.rows.length).toBe(before.rows.length);
  after.rows.forEach((r, i) => {
    const b = before.rows[i]!;
    const exact = (x: Report["rows"][number]) => ({
      ...x,
      latencyMs: undefined,
      successLatencyMs: undefined,
      latencyRatio: undefined,
    });
    expect(exact(r)).toEqual(exact(b));
    for (const kind of ["latencyMs", "successLatencyMs"] as const) {
      expect({ ...r[kind], p50: 0, p95: 0, p99: 0 }).toEqual({ ...b[kind], p50: 0, p95: 0, p99: 0 });
      for (const p of ["p50", "p95", "p99"] as const) {
        if (b[kind][p] === null) expect(r[kind][p]).toBeNull();
        else expect(Math.abs(r[kind][p]! - b[kind][p]!) / b[kind][p]!).toBeLessThanOrEqual(0.05);
      }
    }
  });
}

describe("the roll-up", () => {
  it("folds rows past the retention into hourly aggregates, and the report says the same", async () => {
    // Two batches of rows: two write transactions in the first hour.
    const all = rows("a");
    await insertRows(env.DB, all.slice(0, 100), "queue", T0 + 1);
    await insertRows(env.DB, all.slice(100), "queue", T0 + 2);
    const windows = [
      [0, NOW],
      [T0, T0 + 2 * HOUR_MS],
      [T0 + HOUR_MS, T0 + 4 * HOUR_MS],
    ] as const;
    const before = await Promise.all(windows.map(([s, u]) => buildReport(env.DB, s, u)));
    expect(before[0]!).toMatchObject({ requests: 100, fallbacks: 20, writes: { transactions: 2, rows: 200 } });
    expect(before.map((r) => r.requests)).toEqual([100, 50, 75]);
    // Version and reason are keys: each student version by each reason, the teacher by each reason.
    expect(before[0]!.rows.map((r) => `${r.arm} ${r.version} ${r.reason}`)).toEqual([
      ...["v1", "v2"].flatMap((v) => ["compare", "forced", "split"].map((reason) => `student ${v} ${reason}`)),
      "teacher t1 compare",
      "teacher t1 shadow",
      "teacher t1 split",
    ]);
    // The teacher's split rows are its failures: the timeouts count in its latencies at the timeout,
    // the breaker's refusals (latency 0) do not.
    const teacherSplit = before[0]!.rows.find((r) => r.arm === "teacher" && r.reason === "split")!;
    expect(teacherSplit).toMatchObject({
      count: 20,
      errors: 20,
      errorRate: 1,
      faults: { timeout: 12, circuit_open: 8 },
    });
    expect(teacherSplit.latencyMs).toEqual({ includesFailures: true, runs: 12, p50: 1000, p95: 1000, p99: 1000 });
    expect(teacherSplit.successLatencyMs).toEqual({
      includesFailures: false,
      runs: 0,
      p50: null,
      p95: null,
      p99: null,
    });

    await rollUpAt(NOW);
    expect(await rawCount()).toBe(0);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM writes").first<{ n: number }>())!.n).toBe(0);
    const after = await Promise.all(windows.map(([s, u]) => buildReport(env.DB, s, u)));
    after.forEach((r, i) => {
      expectSameReport(r, before[i]!);
    });
  });

  it("keeps rows within the retention raw, and adds late rows to hours already folded", async () => {
    const recent = NOW - 2 * HOUR_MS;
    await insertRows(
      env.DB,
      [
        {
          requestId: "recent",
          ts: recent,
          mode: "ab",
          reason: "split",
          status: 200,
          arm: "student",
          model: "grey28",
          version: "v1",
          latencyMs: 3,
          ok: true,
          fault: null,
          top1: 1,
          served: true,
        },
      ],
      "direct",
      recent,
    );
    // A row that reached D1 after its hour was folded (a long-delayed queue retry).
    await insertRows(env.DB, rows("late", 1).slice(0, 2), "queue", T0 + 3);
    const before = await buildReport(env.DB, 0, NOW);
    expect(before.requests).toBe(102);
    await rollUpAt(NOW);
    expect(await rawCount()).toBe(1); // the recent row
    expectSameReport(await buildReport(env.DB, 0, NOW), before);
  });

  it("does nothing when nothing is old enough", async () => {
    const before = await buildReport(env.DB, 0, NOW);
    await rollUpAt(T0, "72");
    expect(await buildReport(env.DB, 0, NOW)).toEqual(before);
  });
});
