// GET /v1/report and the configuration endpoints in workerd: the figures against what was sent, the
// token guard, and changing the split at run time.
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { CANARY_DEFAULTS } from "../../src/canary/settings.ts";
import {
  ADMIN_TOKEN,
  abApp,
  asAdmin,
  classify,
  force,
  hosts,
  migrate,
  nearestRank,
  png,
  report,
  row,
  send,
} from "./ab-helpers.ts";
import { entryOf, fixtureStore, fixtures } from "./helpers.ts";

const app = abApp();
beforeAll(migrate);

interface Compared {
  student: { latencyMs: number };
  teacher: { latencyMs: number };
  agree: boolean;
}

const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe("GET /v1/report", () => {
  it("gives counts, percentiles, agreement and the latency ratio that match what was sent", async () => {
    // The student's first run creates its session; that cold start would otherwise hold the teacher's
    // answer up past the timeout (both share the isolate's one thread).
    await classify(app, 99, force("student"));
    const since = Date.now();
    const sent: Compared[] = [];
    for (let i = 0; i < 12; i++) {
      const { response } = await send(
        app,
        "/v1/compare",
        { method: "POST", headers: asAdmin, body: png(100 + i) },
        { TEACHER_TIMEOUT_MS: "10000" },
      );
      sent.push((await response.json()) as Compared);
    }
    const r = await report(app, since);
    expect(r.requests).toBe(12);
    expect(r.fallbacks).toBe(0);
    const s = sent.map((c) => c.student.latencyMs);
    const t = sent.map((c) => c.teacher.latencyMs);
    const student = row(r, "student", "grey28")!;
    const teacher = row(r, "teacher", "teacher28")!;
    expect(student).toMatchObject({
      reason: "compare",
      version: entryOf("grey28").version,
      count: 12,
      served: 12,
      errors: 0,
      errorRate: 0,
      faults: {},
    });
    expect(teacher).toMatchObject({ reason: "compare", version: hosts.entry.version });
    const percentiles = (values: number[]) => ({
      runs: values.length,
      p50: nearestRank(values, 50),
      p95: nearestRank(values, 95),
      p99: nearestRank(values, 99),
    });
    // No run failed: both kinds of percentiles say the same, and say which they are.
    expect(student.latencyMs).toEqual({ includesFailures: true, ...percentiles(s) });
    expect(student.successLatencyMs).toEqual({ includesFailures: false, ...percentiles(s) });
    expect(teacher.latencyMs).toEqual({ includesFailures: true, ...percentiles(t) });
    expect(student.agreement).toEqual({ pairs: 12, top1: sent.filter((c) => c.agree).length / 12 });
    expect(student.latencyRatio).toBeCloseTo(nearestRank(s, 50) / nearestRank(t, 50), 10);
    expect(teacher.agreement).toBeNull();
    expect(teacher.latencyRatio).toBeNull();
  });

  it("counts requests, errors and fallbacks per arm and model", async () => {
    const since = Date.now();
    for (let i = 0; i < 3; i++) await classify(app, 200 + i, force("student"));
    for (let i = 0; i < 2; i++) await classify(app, 210 + i, force("teacher"));
    for (let i = 0; i < 2; i++) await classify(app, 220 + i, force("teacher"), { TEACHER_URL: hosts.garbageUrl });
    const r = await report(app, since);
    expect(r.requests).toBe(7);
    expect(r.fallbacks).toBe(2);
    expect(row(r, "student", "grey28")).toMatchObject({
      reason: "forced",
      count: 5,
      served: 5,
      errors: 0,
      agreement: { pairs: 0, top1: null },
    });
    const teacher = row(r, "teacher", "teacher28")!;
    expect(teacher).toMatchObject({
      reason: "forced",
      count: 4,
      served: 2,
      errors: 2,
      errorRate: 0.5,
      faults: { bad_response: 2 },
    });
    expect(teacher.latencyMs.runs).toBe(4);
    expect(teacher.successLatencyMs.runs).toBe(2);
    for (const l of [teacher.latencyMs, teacher.successLatencyMs]) {
      expect(l.p50).toBeGreaterThan(0);
      expect(l.p50! <= l.p95! && l.p95! <= l.p99!).toBe(true);
    }
  });

  it("separates the split's traffic from forced and compare traffic, and shadows from both", async () => {
    const since = Date.now();
    // The split: every client on the student, half of the answers shadowed.
    for (let i = 0; i < 4; i++)
      await classify(app, 500 + i, { "X-Client-Id": `split-${i}` }, { STUDENT_PERCENT: "100", SHADOW_PERCENT: "100" });
    for (let i = 0; i < 3; i++) await classify(app, 510 + i, force("student"));
    for (let i = 0; i < 2; i++)
      await send(
        app,
        "/v1/compare",
        { method: "POST", headers: asAdmin, body: png(520 + i) },
        { TEACHER_TIMEOUT_MS: "10000" },
      );
    const r = await report(app, since);
    expect(r.requests).toBe(9);
    expect(r.rows.map((x) => [x.arm, x.reason, x.count])).toEqual([
      ["student", "compare", 2],
      ["student", "forced", 3],
      ["student", "split", 4],
      ["teacher", "compare", 2],
      ["teacher", "shadow", 4],
    ]);
    expect(row(r, "student", "grey28", "split")!.agreement!.pairs).toBe(4);
    expect(row(r, "student", "grey28", "compare")!.agreement!.pairs).toBe(2);
    expect(row(r, "student", "grey28", "forced")!.agreement!.pairs).toBe(0);
  });

  it("groups by model version", async () => {
    const next = {
      ...fixtures.manifest,
      models: fixtures.manifest.models.map((m) => (m.name === "grey28" ? { ...m, version: "next" } : m)),
    };
    const nextApp = createApp({ store: fixtureStore(next), abRouting: { teachers: [hosts.entry] } });
    const since = Date.now();
    for (let i = 0; i < 2; i++) await classify(app, 600 + i, force("student"));
    for (let i = 0; i < 3; i++) await classify(nextApp, 610 + i, force("student"));
    const r = await report(app, since);
    expect(r.rows.map((x) => [x.model, x.version, x.count])).toEqual([
      ["grey28", entryOf("grey28").version, 2],
      ["grey28", "next", 3],
    ]);
  });

  it("counts a timeout as an error, at the timeout, in the percentiles that include failures", async () => {
    await classify(app, 699, force("teacher")); // the teacher's connection is warm: the timeout is the only delay
    const since = Date.now();
    // 1 s: far above a warm teacher's answer even on a loaded machine, far below the slow host's 3 s.
    const vars = { TEACHER_TIMEOUT_MS: "1000" };
    await classify(app, 700, force("teacher"), vars);
    await classify(app, 701, force("teacher"), { ...vars, TEACHER_URL: hosts.slowUrl });
    await classify(app, 702, force("teacher"), { ...vars, TEACHER_URL: hosts.slowUrl });
    const teacher = row(await report(app, since), "teacher", "teacher28")!;
    expect(teacher).toMatchObject({ count: 3, errors: 2, errorRate: 2 / 3, faults: { timeout: 2 } });
    expect(teacher.latencyMs).toMatchObject({ includesFailures: true, runs: 3, p95: 1000, p99: 1000 });
    expect(teacher.successLatencyMs.runs).toBe(1);
    expect(teacher.successLatencyMs.p99).toBeLessThan(1000);
  });

  it("takes since as a duration, an ISO time or epoch milliseconds", async () => {
    const now = Date.now();
    const hourAgo = now - 3_600_000;
    for (const since of [
      "1h",
      "60m",
      new Date(hourAgo).toISOString(),
      new Date(hourAgo).toISOString().replace("Z", "+00:00"),
      String(hourAgo),
    ]) {
      const { response } = await send(app, `/v1/report?since=${encodeURIComponent(since)}`, { headers: auth });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { since: string; requests: number };
      expect(Math.abs(Date.parse(body.since) - hourAgo)).toBeLessThan(5_000);
      expect(body.requests).toBeGreaterThan(0);
    }
    const today = new Date(now).toISOString().slice(0, 10);
    const { response } = await send(app, `/v1/report?since=${today}`, { headers: auth });
    expect(((await response.json()) as { since: string }).since).toBe(`${today}T00:00:00.000Z`);
    expect((await report(app, now)).rows).toEqual([]);
  });

  it("refuses a since that is malformed, implausible or in the future, with 400 and the reason", async () => {
    const cases: [string, RegExp][] = [
      ["yesterday", /^since must be an ISO 8601 date or time with offset/],
      ["99999999999999999", /^since="99999999999999999" is in the future \(beyond any date\)/],
      ["2026", /^since=2026 reads as 2026 ms after 1970; for the year give a date, e.g. 2026-01-01$/],
      [
        String(Math.floor(Date.now() / 1000) - 3600),
        /reads as milliseconds, which is 1970-.*; for seconds since the epoch write \d+000$/,
      ],
      ["100000d", /reaches back before 2000-01-01T00:00:00.000Z/],
      ["1999-12-31", /reaches back before 2000-01-01/],
      ["2026-02-31", /^since must be an ISO 8601/],
      ["2026-11-29T10:00", /^since must be an ISO 8601/], // a time without an offset
      ["2999-01-01", /is in the future \(2999-01-01T00:00:00.000Z\)/],
      ["-5", /^since must be an ISO 8601/],
      ["1e12", /^since must be an ISO 8601/],
    ];
    for (const [since, error] of cases) {
      const { response } = await send(app, `/v1/report?since=${encodeURIComponent(since)}`, { headers: auth });
      expect(response.status, since).toBe(400);
      const body = (await response.json()) as Record<string, string>;
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error, since).toMatch(error);
    }
  });
});

describe("the admin token", () => {
  const attempts: [string, Record<string, string>][] = [
    ["no Authorization header", {}],
    ["a wrong token", { Authorization: "Bearer not-the-token" }],
    ["a prefix of the token", { Authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
    ["another scheme", { Authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` }],
  ];
  for (const path of ["/v1/report", "/v1/config", "/v1/keys"]) {
    for (const [what, headers] of attempts) {
      it(`refuses ${path} with ${what}`, async () => {
        const { response } = await send(app, path, { headers });
        // Hono's bearer-auth: 401 for a missing or wrong token, 400 for another scheme.
        expect(response.status).toBe(what === "another scheme" ? 400 : 401);
        expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer /);
        const body = (await response.json()) as Record<string, string>;
        expect(Object.keys(body)).toEqual(["error"]);
        expect(body.error).not.toContain(ADMIN_TOKEN);
      });
    }
  }

  it("keeps the admin API closed when no token is configured, without naming the secret", async () => {
    const { response } = await send(app, "/v1/report", { headers: { Authorization: "Bearer " } }, { ADMIN_TOKEN: "" });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: "the admin API is disabled on this server" });
  });

  it("does not guard the public routes", async () => {
    const { response } = await classify(app, 300);
    expect(response.status).toBe(200);
  });
});

describe("/v1/config", () => {
  it("shows the settings in force and changes them at run time", async () => {
    const get = async () =>
      (await (await send(app, "/v1/config", { headers: auth }, { STUDENT_PERCENT: "100" })).response.json()) as Record<
        string,
        unknown
      >;
    const settings = {
      studentPercent: 100,
      shadowPercent: 0,
      teacherTimeoutMs: 1000,
      breakerFaults: 5,
      breakerCooldownMs: 30000,
      workersUsdPerMillionRequests: 0.3,
      workersUsdPerMillionCpuMs: 0.02,
      teacherUsdPerGpuHour: 1,
      teacherRequestsPerGpuSecond: 596.5,
    };
    expect(await get()).toEqual({
      settings,
      defaults: settings,
      overridden: [],
      canary: { settings: CANARY_DEFAULTS, defaults: CANARY_DEFAULTS, overridden: [] },
      teacher: { url: hosts.url, model: "teacher28", authenticated: true },
      defaultStudent: "grey28",
      measurements: "direct",
      rateLimited: false,
    });
    const patch = (body: unknown) =>
      send(
        app,
        "/v1/config",
        { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify(body) },
        { STUDENT_PERCENT: "100" },
      );
    const changed = await patch({ studentPercent: 0 });
    expect(changed.response.status).toBe(200);
    expect(await changed.response.json()).toMatchObject({
      settings: { studentPercent: 0 },
      overridden: ["studentPercent"],
    });
    // Every client now goes to the teacher, whatever the var says.
    for (let i = 0; i < 5; i++) {
      const { response } = await classify(app, 400 + i, { "X-Client-Id": `c${i}` }, { STUDENT_PERCENT: "100" });
      expect(response.headers.get("X-Arm")).toBe("teacher");
    }
    const restored = await patch({ studentPercent: null });
    expect(await restored.response.json()).toMatchObject({ settings: { studentPercent: 100 }, overridden: [] });
    const { response } = await classify(app, 410, { "X-Client-Id": "c0" }, { STUDENT_PERCENT: "100" });
    expect(response.headers.get("X-Arm")).toBe("student");
  });

  it("refuses bad changes with the reason", async () => {
    const cases: [string, string][] = [
      ['{"studentPercent": 101}', "studentPercent must be a number from 0 to 100, got 101"],
      ['{"teacherTimeoutMs": 0}', "teacherTimeoutMs must be a number from 1 to 60000, got 0"],
      // Strings must be plain decimals: Number() would read both of these as 50.
      ['{"studentPercent": "0x32"}', 'studentPercent must be a number from 0 to 100, got "0x32"'],
      ['{"breakerFaults": " 5e1 "}', 'breakerFaults must be a number from 1 to 1000, got " 5e1 "'],
      [
        '{"split": 5}',
        'unknown setting "split" (known: studentPercent, shadowPercent, teacherTimeoutMs, breakerFaults, breakerCooldownMs, workersUsdPerMillionRequests, workersUsdPerMillionCpuMs, teacherUsdPerGpuHour, teacherRequestsPerGpuSecond, canary)',
      ],
      [
        "{}",
        "body names no setting (known: studentPercent, shadowPercent, teacherTimeoutMs, breakerFaults, breakerCooldownMs, workersUsdPerMillionRequests, workersUsdPerMillionCpuMs, teacherUsdPerGpuHour, teacherRequestsPerGpuSecond, canary)",
      ],
      ["[1]", "body must be a JSON object"],
      ["{", 'the body must be JSON, e.g. {"studentPercent": 80}'],
    ];
    for (const [body, error] of cases) {
      const { response } = await send(app, "/v1/config", {
        method: "PATCH",
        headers: { ...auth, "Content-Type": "application/json" },
        body,
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error });
    }
  });
});
