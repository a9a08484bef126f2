// The dashboard in workerd: who may see it (the sign-in form, the token, the session cookie and its
// flags and expiry), CSRF refusals, the split changed from the page, the static files, and its
// figures over time against GET /v1/report on the same traffic.
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { DASHBOARD_ASSETS } from "../../src/dashboard/assets.ts";
import { wilsonInterval } from "../../src/dashboard/series.ts";
import type { Series } from "../../src/dashboard/series.ts";
import type { Report } from "../../src/measurements/report.ts";
import { ADMIN_TOKEN, asAdmin, classify, force, hosts, migrate, png, report, send } from "./ab-helpers.ts";
import { fixtureStore } from "./helpers.ts";

const ORIGIN = "http://edge.test";
const TTL_S = 600;
let clock = Date.now();
const app = createApp({
  store: fixtureStore(),
  abRouting: { teachers: [hosts.entry] },
  dashboard: { assets: DASHBOARD_ASSETS, session: { ttlSeconds: TTL_S, now: () => clock } },
});
beforeAll(migrate);

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM_TYPE = { "Content-Type": "application/x-www-form-urlencoded" };

function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return send(app, path, {
    method: "POST",
    headers: { ...FORM_TYPE, Origin: ORIGIN, ...headers },
    body: form(fields),
    redirect: "manual",
  });
}

/** The session cookie a sign-in sets, as a Cookie header value. */
async function signIn(): Promise<string> {
  const { response } = await post("/dashboard/sign-in", { token: ADMIN_TOKEN });
  expect(response.status).toBe(303);
  return response.headers.get("set-cookie")!.split(";")[0]!;
}

async function page(cookie?: string, path = "/dashboard"): Promise<{ status: number; body: string; headers: Headers }> {
  const { response } = await send(app, path, { headers: cookie ? { Cookie: cookie } : {} });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

const csrfTokenOf = (body: string) => /name="csrf" value="([^"]+)"/.exec(body)![1]!;

describe("dashboard access", () => {
  it("shows only the sign-in form when signed out, and refuses its data", async () => {
    const p = await page();
    expect(p.status).toBe(200);
    expect(p.headers.get("content-type")).toMatch(/^text\/html/);
    expect(p.body).toMatch(/<form method="post" action="\/dashboard\/sign-in">/);
    expect(p.body).toMatch(/name="token" type="password"/);
    expect(p.body).not.toMatch(/csrf|arm-rows|data-field|uplot/);
    const { response } = await send(app, "/dashboard/data");
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "not signed in (or the session expired): sign in at /dashboard" });
  });

  it("answers a wrong token with 401 and the form, and sets no cookie", async () => {
    const { response } = await post("/dashboard/sign-in", { token: `${ADMIN_TOKEN}x` });
    expect(response.status).toBe(401);
    expect(response.headers.get("set-cookie")).toBeNull();
    const body = await response.text();
    expect(body).toMatch(/That is not the admin token/);
    expect(body).toMatch(/name="token"/);
    const empty = await post("/dashboard/sign-in", { token: "" });
    expect(empty.response.status).toBe(400);
  });

  it("signs in with the admin token: an HttpOnly, SameSite=Strict, signed cookie with an expiry", async () => {
    const { response } = await post("/dashboard/sign-in", { token: ADMIN_TOKEN });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/dashboard");
    const cookie = response.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^narrowdeep_dashboard=[^;]+\.[A-Za-z0-9%]+/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\/dashboard/);
    expect(cookie).toMatch(new RegExp(`; Max-Age=${TTL_S}`));
    expect(cookie).not.toMatch(/Secure/); // plain HTTP (wrangler dev); see the HTTPS case below
    const p = await page(cookie.split(";")[0]);
    expect(p.body).toMatch(/id="arm-rows"/);
    expect(p.body).toMatch(/src="\/dashboard\/assets\/uplot.js"/);
    expect(p.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
    expect(p.headers.get("content-security-policy")).toMatch(/frame-ancestors 'none'/);
    expect(p.headers.get("cache-control")).toBe("no-store");
  });

  it("marks the cookie Secure over HTTPS", async () => {
    const response = await app.request(
      "https://edge.test/dashboard/sign-in",
      { method: "POST", headers: { ...FORM_TYPE, Origin: "https://edge.test" }, body: form({ token: ADMIN_TOKEN }) },
      { DB: (await import("cloudflare:workers")).env.DB, ADMIN_TOKEN },
    );
    expect(response.status).toBe(303);
    expect(response.headers.get("set-cookie")).toMatch(/; Secure/);
  });

  it("refuses a forged or tampered cookie", async () => {
    const cookie = await signIn();
    const [name, value] = cookie.split("=") as [string, string];
    const decoded = decodeURIComponent(value);
    const later = decoded.replace(/^\d+/, String(clock + 10 * TTL_S * 1000));
    expect((await page(`${name}=${encodeURIComponent(later)}`)).body).toMatch(/name="token"/);
    expect((await page(`${name}=${encodeURIComponent(`${clock + 1e9}.AAAAAAAAAAAAAAAAAAAAAAAA`)}`)).body).toMatch(
      /name="token"/,
    );
    expect((await page(cookie)).body).toMatch(/id="arm-rows"/);
  });

  it("ends a session when it expires, whatever the browser keeps", async () => {
    const cookie = await signIn();
    expect((await send(app, "/dashboard/data", { headers: { Cookie: cookie } })).response.status).toBe(200);
    clock += TTL_S * 1000 + 1;
    try {
      expect((await page(cookie)).body).toMatch(/name="token"/);
      expect((await send(app, "/dashboard/data", { headers: { Cookie: cookie } })).response.status).toBe(401);
    } finally {
      clock = Date.now();
    }
  });

  it("signs out: the cookie is cleared, and only with the session's CSRF token", async () => {
    const cookie = await signIn();
    const token = csrfTokenOf((await page(cookie)).body);
    expect((await post("/dashboard/sign-out", { csrf: "wrong" }, { Cookie: cookie })).response.status).toBe(403);
    const { response } = await post("/dashboard/sign-out", { csrf: token }, { Cookie: cookie });
    expect(response.status).toBe(303);
    expect(response.headers.get("set-cookie")).toMatch(/^narrowdeep_dashboard=; Max-Age=0; Path=\/dashboard/);
  });

  it("revokes the session on sign-out: a copy of the cookie replayed afterwards gets 401; other sessions live on", async () => {
    const cookie = await signIn();
    const other = await signIn();
    const token = csrfTokenOf((await page(cookie)).body);
    expect((await post("/dashboard/sign-out", { csrf: token }, { Cookie: cookie })).response.status).toBe(303);
    // The cookie's signature and expiry still hold; the server has revoked it.
    const replayed = await send(app, "/dashboard/data", { headers: { Cookie: cookie } });
    expect(replayed.response.status).toBe(401);
    expect(await replayed.response.json()).toEqual({
      error: "not signed in (or the session expired): sign in at /dashboard",
    });
    expect((await page(cookie)).body).toMatch(/name="token"/);
    expect(
      (await post("/dashboard/config", { csrf: token, studentPercent: "40" }, { Cookie: cookie })).response.status,
    ).toBe(401);
    expect((await send(app, "/dashboard/data", { headers: { Cookie: other } })).response.status).toBe(200);
  });

  it("is disabled (503) with an ADMIN_TOKEN under 32 characters, which the admin API refuses too", async () => {
    const short = "short-admin-token-0123456789";
    const { response } = await send(app, "/dashboard", {}, { ADMIN_TOKEN: short });
    expect(response.status).toBe(503);
    const admin = await send(
      app,
      "/v1/config",
      { headers: { Authorization: `Bearer ${short}` } },
      { ADMIN_TOKEN: short },
    );
    expect(admin.response.status).toBe(503);
    expect(await admin.response.json()).toEqual({ error: "the admin API is disabled on this server" });
  });

  it("is disabled (503) without an ADMIN_TOKEN", async () => {
    const { response } = await send(app, "/dashboard", {}, { ADMIN_TOKEN: "" });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: "the dashboard is disabled on this server" });
  });
});

describe("dashboard changes (CSRF)", () => {
  async function splitNow(): Promise<number> {
    const { response } = await send(app, "/v1/config", { headers: asAdmin });
    return ((await response.json()) as { settings: { studentPercent: number } }).settings.studentPercent;
  }

  it("changes the split from the page's form with the session's token", async () => {
    const cookie = await signIn();
    const token = csrfTokenOf((await page(cookie)).body);
    const { response } = await post(
      "/dashboard/config",
      { csrf: token, studentPercent: "70", shadowPercent: "" },
      { Cookie: cookie },
    );
    expect(response.status).toBe(200);
    expect(((await response.json()) as { settings: { studentPercent: number } }).settings.studentPercent).toBe(70);
    expect(await splitNow()).toBe(70);
    const bad = await post("/dashboard/config", { csrf: token, studentPercent: "170" }, { Cookie: cookie });
    expect(bad.response.status).toBe(400);
    expect(await bad.response.json()).toEqual({ error: 'studentPercent must be a number from 0 to 100, got "170"' });
    // Numbers are plain decimals: what JavaScript's Number() would also read as 50 is refused.
    for (const sloppy of [" 5e1 ", "0x32", "5e1", "50 ", "Infinity"]) {
      const refused = await post("/dashboard/config", { csrf: token, shadowPercent: sloppy }, { Cookie: cookie });
      expect(refused.response.status).toBe(400);
      expect(await refused.response.json()).toEqual({
        error: `shadowPercent must be a number from 0 to 100, got ${JSON.stringify(sloppy)}`,
      });
    }
    // A repeated field is refused rather than one of its values picked.
    const body = `${form({ csrf: token, studentPercent: "20" })}&studentPercent=90`;
    const repeated = await send(app, "/dashboard/config", {
      method: "POST",
      headers: { ...FORM_TYPE, Origin: ORIGIN, Cookie: cookie },
      body,
    });
    expect(repeated.response.status).toBe(400);
    expect(await repeated.response.json()).toEqual({ error: 'form field "studentPercent" is repeated; send it once' });
    expect(await splitNow()).toBe(70);
  });

  it("refuses a cross-origin post even with a valid cookie and token", async () => {
    const cookie = await signIn();
    const token = csrfTokenOf((await page(cookie)).body);
    const before = await splitNow();
    const crossOrigin: Record<string, string>[] = [
      { Origin: "https://evil.example" },
      { Origin: "null" },
      { Origin: "", "Sec-Fetch-Site": "cross-site" },
    ];
    for (const headers of crossOrigin) {
      const { response } = await post(
        "/dashboard/config",
        { csrf: token, studentPercent: String((before + 13) % 100) },
        { Cookie: cookie, ...headers },
      );
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: "cross-origin form posts are refused" });
    }
    const signInElsewhere = await post(
      "/dashboard/sign-in",
      { token: ADMIN_TOKEN },
      { Origin: "https://evil.example" },
    );
    expect(signInElsewhere.response.status).toBe(403);
    expect(await splitNow()).toBe(before);
  });

  it("refuses a same-origin post without the session's CSRF token, or without a session", async () => {
    const cookie = await signIn();
    const other = csrfTokenOf((await page(await signIn())).body);
    const withoutToken: Record<string, string>[] = [{}, { csrf: "" }, { csrf: other }];
    for (const fields of withoutToken) {
      const { response } = await post("/dashboard/config", { ...fields, studentPercent: "5" }, { Cookie: cookie });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: "missing or wrong CSRF token: reload the dashboard" });
    }
    expect((await post("/dashboard/config", { csrf: other, studentPercent: "5" })).response.status).toBe(401);
    // JSON is no way around the form: the route takes forms only.
    const json = await send(app, "/dashboard/config", {
      method: "POST",
      headers: { Cookie: cookie, Origin: ORIGIN, "Content-Type": "application/json" },
      body: '{"studentPercent": 5}',
    });
    expect(json.response.status).toBe(415);
  });
});

describe("dashboard files and figures", () => {
  it("serves uPlot and its own script and styles, with types and ETags, to anyone", async () => {
    for (const [file, type, marker] of [
      ["uplot.js", "text/javascript", /uPlot/],
      ["uplot.css", "text/css", /\.uplot/],
      ["dashboard.js", "text/javascript", /\/data\?window=/],
      ["dashboard.css", "text/css", /body/],
    ] as const) {
      const { response } = await send(app, `/dashboard/assets/${file}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(new RegExp(`^${type}`));
      expect(response.headers.get("etag")).toMatch(/^"/);
      expect(await response.text()).toMatch(marker);
    }
    expect((await send(app, "/dashboard/assets/secrets.txt")).response.status).toBe(404);
  });

  it("refuses an unknown window", async () => {
    const cookie = await signIn();
    const { response } = await send(app, "/dashboard/data?window=2h", { headers: { Cookie: cookie } });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'window must be one of 15m, 1h, 24h, 7d; got "2h"' });
  });

  it("gives series over time that add up to the report's figures for the same window", async () => {
    await classify(app, 1, force("student"));
    await send(app, "/v1/config", {
      method: "PATCH",
      headers: { ...asAdmin, "Content-Type": "application/json" },
      body: '{"studentPercent": 50}',
    });
    for (let i = 0; i < 8; i++)
      await send(
        app,
        "/v1/compare",
        { method: "POST", headers: asAdmin, body: png(200 + i) },
        { TEACHER_TIMEOUT_MS: "10000" },
      );
    for (let i = 0; i < 6; i++) await classify(app, 300 + i, { "X-Client-Id": `client-${i}` });
    const cookie = await signIn();
    const { response } = await send(app, "/dashboard/data?window=15m", { headers: { Cookie: cookie } });
    expect(response.status).toBe(200);
    const data = (await response.json()) as {
      window: string;
      report: Report;
      series: Series;
      routing: { settings: { studentPercent: number } };
    };
    expect(data.window).toBe("15m");
    expect(data.routing.settings.studentPercent).toBe(50);
    expect(data.series.intervalMs).toBe(60_000);
    const r = await report(app, data.series.since);
    expect(data.report.rows.map((x) => [x.arm, x.model, x.version, x.reason, x.count])).toEqual(
      r.rows.map((x) => [x.arm, x.model, x.version, x.reason, x.count]),
    );
    // The series put every reason of an arm, model and version together.
    const keys = new Set(r.rows.map((x) => JSON.stringify([x.arm, x.model, x.version])));
    expect(data.series.runs.map((s) => JSON.stringify([s.arm, s.model, s.version])).sort()).toEqual([...keys].sort());
    for (const key of keys) {
      const [arm, model, version] = JSON.parse(key) as [string, string, string | null];
      const rows = r.rows.filter((x) => x.arm === arm && x.model === model && x.version === version);
      const points = data.series.runs.find((s) => s.arm === arm && s.model === model && s.version === version)!.points;
      expect(points.reduce((n, p) => n + p.count, 0)).toBe(rows.reduce((n, x) => n + x.count, 0));
      expect(points.reduce((n, p) => n + p.errors, 0)).toBe(rows.reduce((n, x) => n + x.errors, 0));
      for (const p of points) expect(p.t % 60_000).toBe(0);
      const cdf = data.series.latencyCdf.find((s) => s.arm === arm && s.model === model && s.version === version)!;
      expect(cdf.runs).toBe(rows.reduce((n, x) => n + x.latencyMs.runs, 0));
      expect(cdf.points.at(-1)![1]).toBe(1);
    }
    for (const row of data.report.rows as (Report["rows"][number] & {
      agreementInterval: { low: number; high: number } | null;
    })[]) {
      const pairs = row.agreement?.pairs ?? 0;
      expect(row.agreementInterval).toEqual(
        pairs > 0 ? wilsonInterval(Math.round(row.agreement!.top1! * pairs), pairs) : null,
      );
    }
    const students = r.rows.filter((x) => x.arm === "student");
    const pairs = data.series.agreement.flatMap((a) => a.points);
    const reported = students.reduce((n, x) => n + x.agreement!.pairs, 0);
    expect(reported).toBeGreaterThan(0);
    expect(pairs.reduce((n, p) => n + p.pairs, 0)).toBe(reported);
    expect(pairs.reduce((n, p) => n + p.agreeing, 0)).toBe(
      students.reduce((n, x) => n + Math.round((x.agreement!.top1 ?? 0) * x.agreement!.pairs), 0),
    );
    for (const p of pairs) {
      expect(p).toMatchObject(wilsonInterval(p.agreeing, p.pairs));
      expect(p.low).toBeLessThanOrEqual(p.top1);
      expect(p.high).toBeGreaterThanOrEqual(p.top1);
    }
  });

  it("computes the Wilson interval", () => {
    // Reference values: Wilson (1927) score interval at z = 1.96, as statsmodels' proportion_confint(method="wilson").
    const a = wilsonInterval(8, 10);
    expect(a.low).toBeCloseTo(0.4902, 4);
    expect(a.high).toBeCloseTo(0.9433, 4);
    const b = wilsonInterval(0, 5);
    expect(b.low).toBe(0);
    expect(b.high).toBeCloseTo(0.4345, 4);
    expect(wilsonInterval(50, 50).high).toBe(1);
  });
});

describe("dashboard cost", () => {
  it("shows the report's cost per 1,000 requests per arm, priced on the settings the page's form sets", async () => {
    const cookie = await signIn();
    const { body } = await page(cookie);
    // The frame the script fills: a table of arms and a line with the prices.
    expect(body).toContain('<section id="cost">');
    expect(body).toContain('<tbody id="cost-rows"></tbody>');
    expect(body).toContain('data-field="costBasis"');
    // A GPU-hour of $3.60 at 500 requests a second: $0.000002 of GPU a teacher request.
    const set = await post(
      "/dashboard/config",
      { csrf: csrfTokenOf(body), teacherUsdPerGpuHour: "3.6", teacherRequestsPerGpuSecond: "500" },
      { Cookie: cookie },
    );
    expect(set.response.status).toBe(200);
    const refused = await post(
      "/dashboard/config",
      { csrf: csrfTokenOf(body), teacherRequestsPerGpuSecond: "0" },
      { Cookie: cookie },
    );
    expect(refused.response.status).toBe(400);
    expect(((await refused.response.json()) as { error: string }).error).toContain("teacherRequestsPerGpuSecond");
    await classify(app, 500, force("student"));
    await classify(app, 501, force("teacher"));
    const { response } = await send(app, "/dashboard/data?window=15m", { headers: { Cookie: cookie } });
    const data = (await response.json()) as { report: Report; series: Series };
    const cost = data.report.cost!;
    expect(cost.prices).toMatchObject({ teacherUsdPerGpuHour: 3.6, teacherRequestsPerGpuSecond: 500 });
    expect(cost.perThousandRequests.teacher.teacherGpu).toBeCloseTo(0.002, 12);
    const student = cost.perThousandRequests.student!;
    expect(student.workersCpu).toBeCloseTo((cost.studentMsPerRun! * cost.prices.workersUsdPerMillionCpuMs) / 1000, 12);
    expect(student.teacherGpu).toBe(0);
    // The same figures GET /v1/report gives for the same window.
    expect(cost).toEqual((await report(app, data.series.since)).cost);
    await send(app, "/v1/config", {
      method: "PATCH",
      headers: { ...asAdmin, "Content-Type": "application/json" },
      body: '{"teacherUsdPerGpuHour": null, "teacherRequestsPerGpuSecond": null}',
    });
  });
});

describe("dashboard canary panel", () => {
  interface Panel {
    status: string;
    percent: number;
    settings: { steps: number[] };
    decisions: { action: string; actor: string; percentTo: number }[];
  }
  async function panel(cookie: string): Promise<Panel> {
    const { response } = await send(app, "/dashboard/data?window=15m", { headers: { Cookie: cookie } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { canary: Panel }).canary;
  }

  it("shows the canary's state and history, and pauses and resumes it with the session's token", async () => {
    const cookie = await signIn();
    const token = csrfTokenOf((await page(cookie)).body);
    const before = await panel(cookie);
    expect(before).toMatchObject({ status: "off", decisions: [] });
    expect(before.settings.steps.length).toBeGreaterThan(0);
    expect((await post("/dashboard/canary/pause", { csrf: token }, { Cookie: cookie })).response.status).toBe(409);

    expect((await send(app, "/v1/canary/start", { method: "POST", headers: asAdmin })).response.status).toBe(200);
    expect(await panel(cookie)).toMatchObject({
      status: "running",
      percent: before.settings.steps[0],
      decisions: [{ action: "start", actor: "admin" }],
    });

    const split = await post("/dashboard/config", { csrf: token, studentPercent: "30" }, { Cookie: cookie });
    expect(split.response.status).toBe(409);
    expect(((await split.response.json()) as { error: string }).error).toMatch(
      /canary sets studentPercent while it runs/,
    );
    expect(
      (await post("/dashboard/config", { csrf: token, shadowPercent: "20" }, { Cookie: cookie })).response.status,
    ).toBe(200);

    const crossSite = await post(
      "/dashboard/canary/pause",
      { csrf: token },
      { Cookie: cookie, Origin: "https://evil.example" },
    );
    expect(crossSite.response.status).toBe(403);
    expect((await post("/dashboard/canary/pause", { csrf: "wrong" }, { Cookie: cookie })).response.status).toBe(403);
    expect((await panel(cookie)).status).toBe("running");

    const paused = await post("/dashboard/canary/pause", { csrf: token }, { Cookie: cookie });
    expect(paused.response.status).toBe(200);
    expect(((await paused.response.json()) as Panel).status).toBe("paused");
    const again = await post("/dashboard/canary/pause", { csrf: token }, { Cookie: cookie });
    expect(again.response.status).toBe(409);
    expect(((await again.response.json()) as { error: string }).error).toMatch(/cannot pause the canary: it is paused/);

    expect((await post("/dashboard/canary/resume", { csrf: token }, { Cookie: cookie })).response.status).toBe(200);
    const after = await panel(cookie);
    expect(after.status).toBe("running");
    expect(after.decisions.slice(0, 3).map((d) => d.action)).toEqual(["resume", "pause", "start"]);
    expect(
      (
        await send(app, "/dashboard/canary/stop", {
          method: "POST",
          headers: { ...FORM_TYPE, Origin: ORIGIN, Cookie: cookie },
          body: form({ csrf: token }),
        })
      ).response.status,
    ).toBe(404);
  });
});
