// What each arm costs, in workerd: GET /v1/report's cost per 1,000 requests against what was sent
// (the student's measured milliseconds, the teacher's runs) and the prices PATCH /v1/config sets, and
// the price settings' validation.
import { beforeAll, describe, expect, it } from "vitest";
import type { CostReport } from "../../src/measurements/cost.ts";
import { type App, abApp, asAdmin, force, migrate, png, report, send } from "./ab-helpers.ts";

const app = abApp();
beforeAll(migrate);

const patch = (app: App, body: unknown) =>
  send(app, "/v1/config", {
    method: "PATCH",
    headers: { ...asAdmin, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
const PRICES = [
  "workersUsdPerMillionRequests",
  "workersUsdPerMillionCpuMs",
  "teacherUsdPerGpuHour",
  "teacherRequestsPerGpuSecond",
] as const;
const restorePrices = () =>
  patch(app, { ...Object.fromEntries(PRICES.map((k) => [k, null])), studentPercent: null, shadowPercent: null });

describe("cost per 1,000 requests in GET /v1/report", () => {
  it("prices each arm, the split and the window from the measured runs and the prices in the settings", async () => {
    // Round prices, so the expected figures can be worked out here: the teacher's GPU costs
    // $3.6 / 3600 / 500 = $0.000002 a request.
    const set = await patch(app, {
      workersUsdPerMillionRequests: 0.5,
      workersUsdPerMillionCpuMs: 0.02,
      teacherUsdPerGpuHour: 3.6,
      teacherRequestsPerGpuSecond: 500,
      studentPercent: 60,
      shadowPercent: 50,
    });
    expect(set.response.status).toBe(200);
    // The student's first run creates its session; leave that cold start out of the window.
    await send(app, "/v1/classify", { method: "POST", headers: force("student"), body: png(1) });
    const since = Date.now();
    const studentMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { response } = await send(
        app,
        "/v1/compare",
        { method: "POST", headers: asAdmin, body: png(10 + i) },
        { TEACHER_TIMEOUT_MS: "10000" },
      );
      expect(response.status).toBe(200);
      studentMs.push(((await response.json()) as { student: { latencyMs: number } }).student.latencyMs);
    }
    for (let i = 0; i < 3; i++)
      expect(
        (await send(app, "/v1/classify", { method: "POST", headers: force("teacher"), body: png(20 + i) })).response
          .status,
      ).toBe(200);
    const cost = (await report(app, since)).cost as CostReport;
    expect(cost.currency).toBe("USD");
    expect(cost.prices).toEqual({
      workersUsdPerMillionRequests: 0.5,
      workersUsdPerMillionCpuMs: 0.02,
      teacherUsdPerGpuHour: 3.6,
      teacherRequestsPerGpuSecond: 500,
    });
    expect(cost.split).toEqual({ studentPercent: 60, shadowPercent: 50 });
    const meanMs = studentMs.reduce((a, b) => a + b, 0) / studentMs.length;
    expect(cost.studentMsPerRun).toBeCloseTo(meanMs, 9);
    const { student, teacher, split, window } = cost.perThousandRequests;
    // Per 1,000: the request price is $0.0005, a student run meanMs x $0.00002, a teacher run $0.002.
    expect(student).toMatchObject({
      workersRequests: expect.closeTo(0.0005, 12),
      workersCpu: expect.closeTo(meanMs * 0.00002, 12),
      teacherGpu: 0,
    });
    expect(teacher).toMatchObject({
      workersRequests: expect.closeTo(0.0005, 12),
      workersCpu: 0,
      teacherGpu: expect.closeTo(0.002, 12),
      total: expect.closeTo(0.0025, 12),
    });
    // 60% on the student, half of those shadowed: the teacher runs for 0.6 x 0.5 + 0.4 = 0.7 of requests.
    expect(split).toMatchObject({
      workersCpu: expect.closeTo(0.6 * meanMs * 0.00002, 12),
      teacherGpu: expect.closeTo(0.7 * 0.002, 12),
    });
    // 8 requests: 5 student runs, and 8 teacher runs (5 compared, 3 forced).
    expect(window).toMatchObject({
      workersRequests: expect.closeTo(0.0005, 12),
      workersCpu: expect.closeTo((5 / 8) * meanMs * 0.00002, 12),
      teacherGpu: expect.closeTo(0.002, 12),
    });
    for (const c of [student!, teacher, split!, window!])
      expect(c.total).toBeCloseTo(c.workersRequests + c.workersCpu + c.teacherGpu, 12);
    await restorePrices();
  });

  it("gives the defaults when nothing is set, and nulls what the window cannot price", async () => {
    const cost = (await report(app, Date.now())).cost as CostReport;
    expect(cost.prices).toEqual({
      workersUsdPerMillionRequests: 0.3,
      workersUsdPerMillionCpuMs: 0.02,
      teacherUsdPerGpuHour: 1,
      teacherRequestsPerGpuSecond: 596.5,
    });
    expect(cost.studentMsPerRun).toBeNull();
    expect(cost.perThousandRequests.student).toBeNull();
    expect(cost.perThousandRequests.window).toBeNull();
    // The teacher needs no measurement: $1 / 3600 / 596.5 a request, and $0.30 per million requests.
    expect(cost.perThousandRequests.teacher.total).toBeCloseTo(1000 * (0.3 / 1e6 + 1 / 3600 / 596.5), 12);
  });

  it("takes the Workers prices from the Worker's vars", async () => {
    const cost = (
      await report(app, Date.now(), { WORKERS_USD_PER_MILLION_REQUESTS: "0.6", TEACHER_USD_PER_GPU_HOUR: "7.2" })
    ).cost as CostReport;
    expect(cost.prices).toMatchObject({ workersUsdPerMillionRequests: 0.6, teacherUsdPerGpuHour: 7.2 });
  });
});

describe("the price settings", () => {
  it.each([
    [{ teacherRequestsPerGpuSecond: 0 }, "teacherRequestsPerGpuSecond"],
    [{ teacherUsdPerGpuHour: -1 }, "teacherUsdPerGpuHour"],
    [{ workersUsdPerMillionRequests: "0x1" }, "workersUsdPerMillionRequests"],
    [{ workersUsdPerMillionCpuMs: "cheap" }, "workersUsdPerMillionCpuMs"],
    [{ workersUsdPerMillionCpuMs: 1e9 }, "workersUsdPerMillionCpuMs"],
  ])("refuses %j with 400 naming the field", async (body, field) => {
    const { response } = await patch(app, body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toContain(field);
  });

  it("sets a price and restores its default with null", async () => {
    const set = await patch(app, { teacherUsdPerGpuHour: 2.5 });
    expect(((await set.response.json()) as { settings: Record<string, number> }).settings.teacherUsdPerGpuHour).toBe(
      2.5,
    );
    const back = await patch(app, { teacherUsdPerGpuHour: null });
    expect(((await back.response.json()) as { settings: Record<string, number> }).settings.teacherUsdPerGpuHour).toBe(
      1,
    );
  });
});
