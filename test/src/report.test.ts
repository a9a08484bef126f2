// GET /v1/report and the configuration endpoints in workerd: the figures against what was sent, the
// token guard, and changing the split at run time.
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, abApp, asAdmin, classify, force, hosts, migrate, nearestRank, png, report, row, send } from "./ab-helpers.ts";

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
      const { response } = await send(app, "/v1/compare", { method: "POST", headers: asAdmin, body: png(100 + i) }, { TEACHER_TIMEOUT_MS: "10000" });
      sent.push((await response.json()) as Compared);
    }
    const r = await report(app, since);
    expect(r.requests).toBe(12);
    expect(r.fallbacks).toBe(0);
    const s = sent.map((c) => c.student.latencyMs);
    const t = sent.map((c) => c.teacher.latencyMs);
    const student = row(r, "student", "grey28")!;
    const teacher = row(r, "teacher", "teacher28")!;
    expect(student).toMatchObject({ count: 12, served: 12, errors: 0, errorRate: 0, faults: {} });
    expect(student.latencyMs).toEqual({ p50: nearestRank(s, 50), p95: nearestRank(s, 95), p99: nearestRank(s, 99) });
    expect(teacher.latencyMs).toEqual({ p50: nearestRank(t, 50), p95: nearestRank(t, 95), p99: nearestRank(t, 99) });
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
    expect(row(r, "student", "grey28")).toMatchObject({ count: 5, served: 5, errors: 0, agreement: { pairs: 0, top1: null } });
    expect(row(r, "teacher", "teacher28")).toMatchObject({ count: 4, served: 2, errors: 2, errorRate: 0.5, faults: { bad_response: 2 } });
    const teacher = row(r, "teacher", "teacher28")!.latencyMs;
    expect(teacher.p50).toBeGreaterThan(0);
    expect(teacher.p50! <= teacher.p95! && teacher.p95! <= teacher.p99!).toBe(true);
  });

  it("takes since as a duration, an ISO time or epoch milliseconds, and refuses anything else", async () => {
    const now = Date.now();
    for (const since of ["1h", new Date(now - 3_600_000).toISOString(), String(now - 3_600_000)]) {
      const { response } = await send(app, `/v1/report?since=${encodeURIComponent(since)}`, { headers: auth });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { since: string; requests: number };
      expect(Math.abs(Date.parse(body.since) - (now - 3_600_000))).toBeLessThan(5_000);
      expect(body.requests).toBeGreaterThan(0);
    }
    const future = await report(app, now + 60_000);
    expect(future.rows).toEqual([]);
    const { response } = await send(app, "/v1/report?since=yesterday", { headers: auth });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/^since must be an ISO 8601 time/);
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
    const get = async () => (await (await send(app, "/v1/config", { headers: auth }, { STUDENT_PERCENT: "100" })).response.json()) as Record<string, unknown>;
    const settings = { studentPercent: 100, shadowPercent: 0, teacherTimeoutMs: 1000, breakerFaults: 5, breakerCooldownMs: 30000 };
    expect(await get()).toEqual({
      settings,
      defaults: settings,
      overridden: [],
      teacher: { url: hosts.url, model: "teacher28", authenticated: true },
      defaultStudent: "grey28",
      measurements: "direct",
      rateLimited: false,
    });
    const patch = (body: unknown) => send(app, "/v1/config", { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify(body) }, { STUDENT_PERCENT: "100" });
    const changed = await patch({ studentPercent: 0 });
    expect(changed.response.status).toBe(200);
    expect(await changed.response.json()).toMatchObject({ settings: { studentPercent: 0 }, overridden: ["studentPercent"] });
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
      ['{"split": 5}', 'unknown setting "split" (known: studentPercent, shadowPercent, teacherTimeoutMs, breakerFaults, breakerCooldownMs)'],
      ["{}", "body names no setting (known: studentPercent, shadowPercent, teacherTimeoutMs, breakerFaults, breakerCooldownMs)"],
      ["[1]", "body must be a JSON object"],
      ["{", 'the body must be JSON, e.g. {"studentPercent": 80}'],
    ];
    for (const [body, error] of cases) {
      const { response } = await send(app, "/v1/config", { method: "PATCH", headers: { ...auth, "Content-Type": "application/json" }, body });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error });
    }
  });
});
