// migrations/0004 on a database that already holds measurements: nothing is lost, what the old rows
// say about reason is kept (compare, a shadow's teacher row), the rest reads "unrecorded", and the
// report reads old and new rows, raw and aggregated, side by side.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildReport } from "../../src/measurements/report.ts";
import { insertRows } from "../../src/measurements/write.ts";

const T0 = Date.UTC(2026, 5, 1, 12);
const before = env.TEST_MIGRATIONS.filter((m) => m.name < "0004");

describe("migration 0004 (reason, version, request keys)", () => {
  it("keeps old rows and aggregates, and marks what they did not record", async () => {
    expect(before.map((m) => m.name)).toEqual([
      "0001_measurements.sql",
      "0002_measurements_at_scale.sql",
      "0003_api_keys.sql",
    ]);
    await applyD1Migrations(env.DB, before);
    const old = (id: string, mode: string, arm: string, ts = T0) =>
      env.DB.prepare(
        "INSERT INTO runs (request_id, ts, mode, arm, model, latency_ms, ok, fault, top1, served, status) VALUES (?1, ?2, ?3, ?4, ?5, 4, 1, NULL, 2, ?6, 200)",
      ).bind(id, ts, mode, arm, arm === "student" ? "grey28" : "teacher28", arm === "student" ? 1 : 0);
    await env.DB.batch([
      old("r1", "ab", "student"),
      old("r2", "shadow", "student"),
      old("r2", "shadow", "teacher"),
      old("r3", "compare", "student"),
      old("r3", "compare", "teacher"),
      env.DB.prepare("INSERT INTO run_hours VALUES (?1, 'student', 'grey28', 3, 3, 0, 1, 1)").bind(T0 - 3_600_000),
      env.DB.prepare("INSERT INTO run_hour_latency VALUES (?1, 'student', 'grey28', 4, 3)").bind(T0 - 3_600_000),
    ]);
    await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

    const rows = (
      await env.DB.prepare("SELECT request_id AS id, arm, reason, version FROM runs ORDER BY request_id, arm").all()
    ).results;
    expect(rows).toEqual([
      { id: "r1", arm: "student", reason: "unrecorded", version: "" },
      { id: "r2", arm: "student", reason: "unrecorded", version: "" },
      { id: "r2", arm: "teacher", reason: "shadow", version: "" },
      { id: "r3", arm: "student", reason: "compare", version: "" },
      { id: "r3", arm: "teacher", reason: "compare", version: "" },
    ]);
    // A new row of a reused id at another time is a new request; the same id, time and arm is not.
    const fresh = {
      mode: "ab" as const,
      reason: "split" as const,
      status: 200,
      arm: "student" as const,
      model: "grey28",
      version: "v2",
      latencyMs: 3,
      ok: true,
      fault: null,
      top1: 1,
      served: true,
    };
    await insertRows(env.DB, [{ ...fresh, requestId: "r1", ts: T0 + 1 }], "direct", T0 + 1);
    await insertRows(env.DB, [{ ...fresh, requestId: "r1", ts: T0 + 1 }], "direct", T0 + 1);

    const report = await buildReport(env.DB, T0 - 3_600_000, T0 + 60_000);
    expect(report.requests).toBe(4); // r1, r2, r3, and r1 again at another time
    const students = report.rows.filter((r) => r.arm === "student").map((r) => [r.version, r.reason, r.count]);
    expect(students).toEqual([
      [null, "compare", 1],
      [null, "unrecorded", 2 + 3], // two old raw rows and the aggregated hour's three
      ["v2", "split", 1],
    ]);
    const unrecorded = report.rows.find((r) => r.arm === "student" && r.reason === "unrecorded")!;
    expect(unrecorded.successLatencyMs).toEqual({ includesFailures: false, runs: 2 + 3, p50: 4, p95: 4, p99: 4 });
    expect(unrecorded.agreement).toEqual({ pairs: 1 + 1, top1: 1 });
  });
});
