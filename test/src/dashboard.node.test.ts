// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the real
// stack: the teacher host on the shipped teacher and `wrangler dev` on the shipped students, with a
// fresh local D1. Real traffic (routed, shadowed and compared requests, then some forced to the
// teacher with its host stopped: teacher faults), then: signed out the page is
// the sign-in form alone; a wrong token answers 401; the right one shows the dashboard, whose table
// must equal GET /v1/report over the same window, whose four charts are drawn, whose canary panel
// follows the canary (started through the admin API, paused from the page) and whose split form
// changes the split; sign-out returns to the form. No console errors are allowed (a Content-Security-
// Policy violation is one). A screenshot goes to .bench/dashboard.png (the README's is a copy).
//
// Skips, saying why, where /usr/bin/chromium is missing (`npm install` installs it as root).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Report } from "../../src/measurements/report.ts";
import { type Stack, applyLocalMigrations, startStack } from "../../scripts/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = ".bench/dashboard.png";
const ADMIN_TOKEN = "dashboard-browser-test-admin-token";
const TEACHER_TOKEN = "dashboard-browser-test-teacher-token";
const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
/** Requests forced to the teacher while its host is down. */
const UNREACHABLE = 3;
const SAMPLES = ["ankle-boot", "pullover", "shirt", "trouser"].map((name) =>
  readFileSync(join("samples", `${name}.png`)),
);

if (!existsSync(CHROMIUM)) {
  console.warn(
    `dashboard browser test skipped: ${CHROMIUM} is missing (Debian's chromium; \`npm install\` installs it when run as root, or: apt-get install chromium)`,
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

type Row = Report["rows"][number];
const rowKey = (r: { arm: string; model: string; version: string | null; reason: string }) =>
  `${r.arm}/${r.model}/${r.version ?? ""}/${r.reason}`;

describe.skipIf(!existsSync(CHROMIUM))("the dashboard in chromium", () => {
  let stack: Stack;
  let browser: Browser;
  let persistTo: string;
  const log: string[] = [];

  const worker = (path: string, init: RequestInit = {}) => fetch(`${stack.workerUrl}${path}`, init);
  async function report(since: string): Promise<Report> {
    const r = await worker(`/v1/report?since=${since}`, { headers: auth });
    expect(r.status).toBe(200);
    return (await r.json()) as Report;
  }

  beforeAll(async () => {
    persistTo = mkdtempSync(join(tmpdir(), "narrowdeep-dashboard-"));
    applyLocalMigrations(persistTo);
    const [workerPort, teacherPort] = [await freePort(), await freePort()];
    [stack, browser] = await Promise.all([
      startStack({
        workerPort,
        teacherPort,
        teacherToken: TEACHER_TOKEN,
        persistTo,
        vars: { ADMIN_TOKEN, TEACHER_TOKEN, STUDENT_PERCENT: "50", SHADOW_PERCENT: "50", TEACHER_TIMEOUT_MS: "5000" },
        log: (source, line) => log.push(`[${source}] ${line}`),
      }),
      chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (persistTo) rmSync(persistTo, { recursive: true, force: true });
  });

  it("shows live figures that equal GET /v1/report, behind the sign-in form", async () => {
    // Real traffic: routed requests from 16 clients (half the buckets get the student, half of its
    // answers are shadowed), 4 compared requests (both arms, as the admin), then 3 forced to the
    // teacher while its host is down.
    const sent: Promise<Response>[] = [];
    for (let i = 0; i < 16; i++) {
      sent.push(
        worker("/v1/classify", {
          method: "POST",
          headers: { "Content-Type": "image/png", "X-Client-Id": `browser-${i}` },
          body: SAMPLES[i % 4],
        }),
      );
    }
    for (let i = 0; i < 4; i++)
      sent.push(
        worker("/v1/compare", { method: "POST", headers: { ...auth, "Content-Type": "image/png" }, body: SAMPLES[i] }),
      );
    const statuses = await Promise.all(sent.map(async (p) => (await p).status));
    expect(
      statuses.every((s) => s === 200),
      `statuses ${statuses.join(",")}\n${log.slice(-20).join("\n")}`,
    ).toBe(true);
    // Shadows run after their answers (waitUntil): let them finish first, or one that meets the
    // stopped teacher counts towards its breaker. Done when the rows written have not changed for
    // longer than the queue's batch timeout (5 s).
    const rows = async () => (await report("15m")).rows.reduce((n, r) => n + r.count, 0);
    for (let tries = 0, last = -1, now = await rows(); now !== last; tries++) {
      expect(tries, "shadows did not settle").toBeLessThan(10);
      await new Promise((r) => setTimeout(r, 6_000));
      [last, now] = [now, await rows()];
    }
    // Teacher faults: with the teacher host down, requests forced to the teacher fall back to the student.
    await stack.stopTeacher();
    for (let i = 0; i < UNREACHABLE; i++) {
      const r = await worker("/v1/classify", {
        method: "POST",
        headers: { ...auth, "Content-Type": "image/png", "X-Force-Arm": "teacher" },
        body: SAMPLES[i],
      });
      expect([r.status, r.headers.get("x-teacher-fault")]).toEqual([200, "unreachable"]);
      sent.push(Promise.resolve(r));
    }
    // The queue consumer writes rows within its batch timeout (5 s).
    for (let tries = 0; (await report("15m")).requests < sent.length; tries++) {
      expect(
        tries,
        `measurements did not reach D1: ${JSON.stringify((await report("15m")).rows.map((r) => [rowKey(r), r.count]))} ${(await report("15m")).requests}\n${log.slice(-30).join("\n")}`,
      ).toBeLessThan(40);
      await new Promise((r) => setTimeout(r, 500));
    }

    const consoleErrors: string[] = [];
    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (m) => {
      // The wrong token's 401 and the refused split's 409 are logged as failed loads; both are meant.
      if (m.type() === "error" && !/status of (401|409)\b/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(e.message));

    // Signed out: the sign-in form alone.
    const first = await page.goto(`${stack.workerUrl}/dashboard?window=15m`);
    expect(first!.status()).toBe(200);
    await expect(page.locator("input[name=token]").count()).resolves.toBe(1);
    await expect(page.locator("#arm-rows").count()).resolves.toBe(0);

    // A wrong token: 401 and the form again.
    await page.fill("input[name=token]", `${ADMIN_TOKEN}-wrong`);
    const [wrong] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/dashboard/sign-in")),
      page.click("button[type=submit]"),
    ]);
    expect(wrong.status()).toBe(401);
    await page.waitForSelector("text=That is not the admin token");
    const cookiesAfterWrong = await page.context().cookies();
    expect(cookiesAfterWrong).toEqual([]);

    // The right one: the dashboard, with an HttpOnly, SameSite=Strict session cookie.
    await page.fill("input[name=token]", ADMIN_TOKEN);
    await Promise.all([page.waitForURL(/\/dashboard$/), page.click("button[type=submit]")]);
    const [cookie] = await page.context().cookies();
    expect(cookie).toMatchObject({
      name: "narrowdeep_dashboard",
      httpOnly: true,
      sameSite: "Strict",
      path: "/dashboard",
    });
    expect(cookie!.expires).toBeGreaterThan(Date.now() / 1000);
    await page.goto(`${stack.workerUrl}/dashboard?window=15m`);

    // The table against the report, read before and after the page's own refresh: equal when no
    // measurement arrived in between (a late shadow row makes it try again).
    let compared = false;
    for (let attempt = 0; attempt < 5 && !compared; attempt++) {
      const before = await report("15m");
      // Locators only: the page's Content-Security-Policy refuses evaluated strings, and this file is
      // type-checked without the DOM's types.
      const updated = await page.getAttribute("body", "data-updated");
      for (let waited = 0; (await page.getAttribute("body", "data-updated")) === updated; waited += 100) {
        expect(waited, "the page did not refresh itself").toBeLessThan(15_000);
        await new Promise((r) => setTimeout(r, 100));
      }
      const shown = await Promise.all(
        (await page.locator("#arm-rows tr[data-arm]").all()).map(async (tr) => {
          const attr = async (name: string) => (await tr.getAttribute(`data-${name}`)) ?? "";
          const cells = await Promise.all(
            (await tr.locator("[data-field]").all()).map(async (td) => [
              await td.getAttribute("data-field"),
              await td.textContent(),
            ]),
          );
          return {
            key: [await attr("arm"), await attr("model"), await attr("version"), await attr("reason")].join("/"),
            cells: Object.fromEntries(cells),
          };
        }),
      );
      const after = await report("15m");
      if (JSON.stringify(before.rows) !== JSON.stringify(after.rows)) continue;
      const fixed = (v: number | null) => (v === null ? "–" : v.toFixed(1));
      const percent = (v: number) => `${(v * 100).toFixed(1)}%`;
      const expected = after.rows.map((r: Row) => ({
        key: rowKey(r),
        cells: expect.objectContaining({
          count: String(r.count),
          served: String(r.served),
          errors: String(r.errors),
          errorRate: percent(r.errorRate),
          p50: fixed(r.latencyMs.p50),
          p95: fixed(r.latencyMs.p95),
          p99: fixed(r.latencyMs.p99),
          pairs: r.agreement ? String(r.agreement.pairs) : "–",
          agreement:
            r.agreement?.top1 != null
              ? expect.stringMatching(new RegExp(`^${percent(r.agreement.top1).replace(".", "\\.")} \\(`))
              : "–",
        }),
      }));
      expect(shown).toEqual(expected);
      expect(await page.textContent('[data-field="requests"]')).toBe(String(after.requests));
      compared = true;
    }
    expect(compared, "the report kept changing while the page was read").toBe(true);
    await expect(
      page.locator('#fault-rows tr[data-fault="unreachable"] [data-field="faultCount"]').allTextContents(),
    ).resolves.toEqual([String(UNREACHABLE)]);
    expect(new Set((await report("15m")).rows.map((r) => r.arm))).toEqual(new Set(["student", "teacher"]));
    // The cost table: the teacher's figure needs no measurement, so it is stable between two reads.
    const cost = (await report("15m")).cost!;
    const usd = (v: number) => `$${v.toPrecision(3)}`;
    await expect(
      page.locator('#cost-rows tr[data-cost="teacher"] [data-field="costTotal"]').textContent(),
    ).resolves.toBe(usd(cost.perThousandRequests.teacher.total));
    await expect(page.locator('#cost-rows tr[data-cost="teacher"] [data-field="costGpu"]').textContent()).resolves.toBe(
      usd(cost.perThousandRequests.teacher.teacherGpu),
    );
    await expect(page.locator("#cost-rows tr[data-cost]").count()).resolves.toBe(4);
    expect(await page.textContent('[data-field="costBasis"]')).toContain(
      `${cost.prices.teacherRequestsPerGpuSecond} requests a second per GPU`,
    );

    // Four charts drawn by uPlot.
    for (const id of ["chart-volume", "chart-latency", "chart-cdf", "chart-agreement"]) {
      await expect(page.locator(`#${id} canvas`).count(), id).resolves.toBe(1);
    }
    // The canary: started through the admin API, shown, paused from the page.
    expect((await worker("/v1/canary/start", { method: "POST", headers: auth })).status).toBe(200);
    await page.waitForSelector('[data-field="canaryState"]:text-matches("^running ")');
    await page.waitForSelector('#canary-rows tr[data-action="start"]');
    expect(await page.isVisible('#canary form[data-when="running"] button')).toBe(true);
    expect(await page.isVisible('#canary form[data-when="paused"] button')).toBe(false);
    mkdirSync(".bench", { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    // While the canary runs it owns the split: the form sends only what changed, so the shadow
    // share can change, and the student's share is refused with the canary's reason.
    await page.fill("input[name=shadowPercent]", "40");
    await page.click("#split-form button[type=submit]");
    await page.waitForSelector('[data-field="shadowPercent"]:text-is("40")');
    await page.fill("input[name=studentPercent]", "70");
    await page.click("#split-form button[type=submit]");
    await page.waitForSelector('[data-field="configError"]:text-matches("canary sets studentPercent while it runs")');
    await page.click('#canary form[data-when="running"] button');
    await page.waitForSelector('[data-field="canaryState"]:text-matches("^paused ")');
    expect(await page.isVisible('#canary form[data-when="running"] button')).toBe(false);
    expect(await page.isVisible('#canary form[data-when="paused"] button')).toBe(true);
    const canary = (await (await worker("/v1/canary", { headers: auth })).json()) as {
      status: string;
      decisions: { action: string }[];
    };
    expect(canary.status).toBe("paused");
    expect(canary.decisions[0]!.action).toBe("pause");

    // The split from the page's form (the session's CSRF token, the browser's own Origin).
    await page.fill("input[name=studentPercent]", "60");
    await page.click("#split-form button[type=submit]");
    await page.waitForSelector('[data-field="studentPercent"]:text-is("60")');
    const config = (await (await worker("/v1/config", { headers: auth })).json()) as {
      settings: { studentPercent: number };
    };
    expect(config.settings.studentPercent).toBe(60);

    // Sign-out: the form again, and the data refused.
    await Promise.all([page.waitForURL(/\/dashboard$/), page.click("header form button[type=submit]")]);
    await expect(page.locator("input[name=token]").count()).resolves.toBe(1);
    expect(await page.context().cookies()).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 120_000);
});
