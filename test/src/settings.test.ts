// Routing settings when D1 is in trouble, in workerd: the test file's real database behind a switch
// that makes every query fail (as D1 does when it is unavailable) or answer late. The overrides in
// force come from the last read; a refresh runs after the response (waitUntil), never on the request
// path; a failure keeps the last values (a kill switch stays set) and is logged.
import type { D1Database, D1PreparedStatement } from "@cloudflare/workers-types";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { CACHE_MS } from "../../src/routing/settings.ts";
import { abApp, asAdmin, classify, migrate, send } from "./ab-helpers.ts";

const app = abApp();
beforeAll(migrate);
afterEach(() => vi.restoreAllMocks());

/** env.DB behind a switch; counts reads of the settings table. */
function troubled(db: D1Database) {
  const state = { failing: false, delayMs: 0, settingsReads: 0 };
  const targets = new WeakMap<object, D1PreparedStatement>();
  const gate = async <T>(run: () => Promise<T>): Promise<T> => {
    if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
    if (state.failing) throw new Error("D1_ERROR: the database is unavailable (test switch)");
    return run();
  };
  const statement = (target: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(target, {
      get(t, p) {
        if (p === "bind") return (...args: unknown[]) => statement(t.bind(...args), sql);
        if (p === "all" || p === "first" || p === "run" || p === "raw") {
          return (...args: unknown[]) => {
            if (/FROM settings/.test(sql)) state.settingsReads++;
            return gate(() => (t[p] as (...a: unknown[]) => Promise<unknown>).apply(t, args));
          };
        }
        const v = Reflect.get(t, p, t);
        return typeof v === "function" ? v.bind(t) : v;
      },
    });
    targets.set(proxy, target);
    return proxy;
  };
  const proxy = new Proxy(db, {
    get(t, p) {
      if (p === "prepare") return (sql: string) => statement(t.prepare(sql), sql);
      if (p === "batch")
        return (list: D1PreparedStatement[]) => gate(() => t.batch(list.map((s) => targets.get(s) ?? s)));
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
  return { db: proxy, state };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The var sends every client to the teacher; an override of 100 sends them all to the student.
const toTeacher = { STUDENT_PERCENT: "0" };
const routed = (db: D1Database, seed: number) =>
  classify(app, seed, { "X-Client-Id": `c${seed}` }, { ...toTeacher, DB: db });
const arm = async (db: D1Database, seed: number) => (await routed(db, seed)).response.headers.get("X-Arm");
const override = (percent: number) =>
  env.DB.prepare("INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES ('studentPercent', ?1, 0)")
    .bind(String(percent))
    .run();

describe("routing settings with D1 in trouble", () => {
  it("keep a kill switch set while D1 fails, refresh at most once per period, and log the failure", async () => {
    const d1 = troubled(env.DB);
    const patch = await send(
      app,
      "/v1/config",
      { method: "PATCH", headers: { ...asAdmin, "Content-Type": "application/json" }, body: '{"studentPercent": 100}' },
      { DB: d1.db },
    );
    expect(patch.response.status).toBe(200);
    expect(await arm(d1.db, 1)).toBe("student");
    const errors = vi.spyOn(console, "error");
    d1.state.failing = true;
    await wait(CACHE_MS + 100);
    const reads = d1.state.settingsReads;
    for (let i = 0; i < 4; i++) expect(await arm(d1.db, 2 + i)).toBe("student");
    // The first stale request started one refresh (which failed); the rest used the values kept.
    expect(d1.state.settingsReads).toBe(reads + 1);
    expect(errors.mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringMatching(
        /^routing settings unreadable from D1, keeping the last values read \(\{"studentPercent":100\}\): D1_ERROR/,
      ),
    );
    // The admin sees the values in force, and that they may be stale.
    const config = (await (
      await send(app, "/v1/config", { headers: asAdmin }, { ...toTeacher, DB: d1.db })
    ).response.json()) as { settings: { studentPercent: number }; warning: string };
    expect(config.settings.studentPercent).toBe(100);
    expect(config.warning).toMatch(/^the settings table could not be read \(D1_ERROR/);
    d1.state.failing = false;
    await send(
      app,
      "/v1/config",
      {
        method: "PATCH",
        headers: { ...asAdmin, "Content-Type": "application/json" },
        body: '{"studentPercent": null}',
      },
      { DB: d1.db },
    );
  });

  it("are never read on the request path once known: a slow D1 slows no request", async () => {
    const d1 = troubled(env.DB);
    expect(await arm(d1.db, 10)).toBe("teacher"); // the isolate's first read, waited for
    // Another isolate's change, straight into D1; then D1 turns slow.
    await override(100);
    d1.state.delayMs = 2_000;
    await wait(CACHE_MS + 100);
    const stale = await routed(d1.db, 11);
    expect(stale.response.headers.get("X-Arm")).toBe("teacher"); // the last value read, served at once...
    expect(stale.responseMs).toBeLessThan(1_500);
    expect(stale.settledMs).toBeGreaterThanOrEqual(2_000); // ...while the refresh ran after the response
    expect(await arm(d1.db, 12)).toBe("student");
    await env.DB.prepare("DELETE FROM settings").run();
  });

  it("fall back to the defaults when an isolate's first read fails, without a query per request", async () => {
    const d1 = troubled(env.DB);
    await override(100);
    d1.state.failing = true;
    for (let i = 0; i < 5; i++) expect(await arm(d1.db, 20 + i)).toBe("teacher");
    expect(d1.state.settingsReads).toBe(1);
    await env.DB.prepare("DELETE FROM settings").run();
  });
});
