// Each client's allowance of teacher-bound requests, on Cloudflare's Rate Limiting binding as
// Miniflare runs it: the vitest config's TEST_TEACHER_LIMITER (a few a minute, to exhaust here) and
// wrangler.toml's TEACHER_RATE_LIMITER. Forced and compare requests over the limit get 429; the split's
// teacher arm and shadows fall back to the student and say so.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { abApp, asAdmin, classify, migrate, png, report, row, send } from "./ab-helpers.ts";

const app = abApp();
beforeAll(migrate);

const LIMIT = env.TEST_TEACHER_LIMIT;
const limited = { TEACHER_RATE_LIMITER: env.TEST_TEACHER_LIMITER };
/** A client address of its own for each test: the limiter counts per address for anonymous clients. */
const address = () => ({
  "CF-Connecting-IP": `10.0.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`,
});

describe("the teacher allowance", () => {
  it("answers forced teacher requests over the limit with 429 and Retry-After", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const { response } = await classify(app, i, { "X-Force-Arm": "teacher", ...asAdmin }, limited);
      statuses.push(response.status);
      if (response.status === 429) {
        expect(response.headers.get("Retry-After")).toBe("60");
        expect(await response.json()).toEqual({
          error: "X-Force-Arm: teacher: this client is over its allowance of teacher requests; retry later",
        });
      }
    }
    expect(statuses).toEqual([...new Array(LIMIT).fill(200), 429, 429]);
  });

  it("answers /v1/compare over the limit with 429, per API key", async () => {
    const made = (await (
      await send(app, "/v1/keys", {
        method: "POST",
        headers: { ...asAdmin, "Content-Type": "application/json" },
        body: JSON.stringify({ name: "c", rights: ["compare"] }),
      })
    ).response.json()) as { key: string };
    const compare = () =>
      send(
        app,
        "/v1/compare",
        { method: "POST", headers: { Authorization: `Bearer ${made.key}` }, body: png(1) },
        limited,
      );
    for (let i = 0; i < LIMIT; i++) expect((await compare()).response.status).toBe(200);
    expect((await compare()).response.status).toBe(429);
  });

  it("lets the student answer the split's teacher arm over the limit, and records why", async () => {
    const since = Date.now();
    const client = address();
    const arms: (string | null)[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const { response } = await classify(
        app,
        i,
        { ...client, "X-Client-Id": `limited-${i}` },
        { ...limited, STUDENT_PERCENT: "0" },
      );
      expect(response.status).toBe(200);
      arms.push(response.headers.get("X-Arm"));
      if (i >= LIMIT) expect(response.headers.get("X-Teacher-Fault")).toBe("rate_limited");
    }
    // A new client per request does not buy a new allowance: the address counts.
    expect(arms).toEqual([...new Array(LIMIT).fill("teacher"), "student", "student"]);
    const r = await report(app, since);
    expect(row(r, "teacher", "teacher28")).toMatchObject({
      count: LIMIT + 2,
      served: LIMIT,
      faults: { rate_limited: 2 },
    });
    expect(r.fallbacks).toBe(2);
    // Another address has its own allowance.
    const other = await classify(
      app,
      9,
      { ...address(), "X-Client-Id": "limited-0" },
      { ...limited, STUDENT_PERCENT: "0" },
    );
    expect(other.response.headers.get("X-Arm")).toBe("teacher");
  });

  it("counts every anonymous caller without an address as one: fresh cookies and X-Client-Id buy no allowance", async () => {
    // No edge in front (this test; `wrangler dev` sets the socket's address instead): no CF-Connecting-IP.
    if (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 100));
    const arms: (string | null)[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const { response } = await classify(
        app,
        i,
        { "X-Client-Id": `fresh-${i}` },
        { ...limited, STUDENT_PERCENT: "0" },
      );
      expect(response.headers.get("Set-Cookie")).toMatch(/^nd_client=/);
      arms.push(response.headers.get("X-Arm"));
    }
    expect(arms).toEqual([...new Array(LIMIT).fill("teacher"), "student", "student"]);
  });

  it("counts shadows too: over the limit a shadow is recorded as rate-limited, not sent", async () => {
    const since = Date.now();
    const client = address();
    for (let i = 0; i < LIMIT + 1; i++) {
      const { response } = await classify(
        app,
        i,
        { ...client, "X-Client-Id": "shadowed" },
        { ...limited, STUDENT_PERCENT: "100", SHADOW_PERCENT: "100" },
      );
      expect(response.headers.get("X-Arm")).toBe("student");
      expect(response.headers.get("X-Teacher-Fault")).toBeNull();
    }
    const teacher = row(await report(app, since), "teacher", "teacher28")!;
    expect(teacher).toMatchObject({ count: LIMIT + 1, errors: 1, faults: { rate_limited: 1 } });
  });

  it("comes from wrangler.toml's binding in the Worker: 60 a minute per client", async () => {
    const key = `client:${crypto.randomUUID()}`;
    const outcomes: boolean[] = [];
    for (let i = 0; i < 61; i++) outcomes.push((await env.TEACHER_RATE_LIMITER.limit({ key })).success);
    expect(outcomes.filter(Boolean).length).toBe(60);
    expect(outcomes[60]).toBe(false);
  });
});
