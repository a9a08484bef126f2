// X-Request-Id in workerd: on every response (successes, 4xx and 5xx, the admin guard's 401, CORS),
// the client's own when valid, else a new UUID; and it is the id stored with the measurements.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import worker from "../../src/index.ts";
import { MAX_REQUEST_ID_LENGTH, isValidRequestId, requestId } from "../../src/middleware/request-id.ts";
import { abApp, asAdmin, classify, force, migrate, png, send } from "./ab-helpers.ts";
import { fixtureStore } from "./helpers.ts";

const app = abApp();
beforeAll(migrate);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const storedIds = async (since: number) =>
  (
    await env.DB.prepare("SELECT request_id AS id, arm, reason FROM runs WHERE ts >= ?1 ORDER BY id, arm")
      .bind(since)
      .all<{ id: string; arm: string; reason: string }>()
  ).results;

describe("X-Request-Id", () => {
  it("is on every response, errors included, and new for each request", async () => {
    const responses = [
      (await send(app, "/v2/health/live")).response, // 200
      (await send(app, "/v9/nothing")).response, // 404
      (
        await send(app, "/v2/models/grey28/infer", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: "{",
        })
      ).response, // 400
      (await send(app, "/v1/report")).response, // 401 from bearer-auth, a response built outside the route
      (await send(app, "/v1/report?since=2026", { headers: asAdmin })).response, // 400
      (await classify(app, 1, { "X-Force-Arm": "sideways", ...asAdmin })).response, // 400
      (
        await send(
          app,
          "/v1/compare",
          { method: "POST", headers: asAdmin, body: png(1) },
          { TEACHER_URL: "ftp://nope" },
        )
      ).response, // 503
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 404, 400, 401, 400, 400, 503]);
    const ids = responses.map((r) => r.headers.get("X-Request-Id"));
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("keeps the client's own id when it is valid, and replaces one that is not", async () => {
    const valid = ["a", "trace-01.ABC_def:9", "0af7651916cd43dd8448eb211c80319c", "x".repeat(MAX_REQUEST_ID_LENGTH)];
    for (const id of valid) {
      const { response } = await send(app, "/v9/nothing", { headers: { "X-Request-Id": id } });
      expect(response.headers.get("X-Request-Id")).toBe(id);
    }
    const invalid = ["x".repeat(MAX_REQUEST_ID_LENGTH + 1), "has space", "<script>", "naïve", "a/b", "a,b", "id;drop"];
    for (const id of invalid) {
      const { response } = await send(app, "/v9/nothing", { headers: { "X-Request-Id": id } });
      expect(response.status).toBe(404); // refused silently: the client still gets its answer
      expect(response.headers.get("X-Request-Id"), id).toMatch(UUID);
    }
  });

  it("answers the admin guard's 401 with the client's id", async () => {
    const { response } = await send(app, "/v1/config", { headers: { "X-Request-Id": "ticket-4711" } });
    expect(response.status).toBe(401);
    expect(response.headers.get("X-Request-Id")).toBe("ticket-4711");
  });

  it("is the id stored with every row of the request: routed, shadowed and compared", async () => {
    const since = Date.now();
    const split = await classify(
      app,
      2,
      { "X-Client-Id": "rid-a", "X-Request-Id": "mine-1" },
      { STUDENT_PERCENT: "100", SHADOW_PERCENT: "100" },
    );
    expect(split.response.headers.get("X-Request-Id")).toBe("mine-1");
    const forced = await classify(app, 3, force("teacher"));
    const compared = await send(
      app,
      "/v1/compare",
      { method: "POST", headers: { ...asAdmin, "X-Request-Id": "mine-2" }, body: png(4) },
      { TEACHER_TIMEOUT_MS: "10000" },
    );
    const generated = forced.response.headers.get("X-Request-Id")!;
    expect(await storedIds(since)).toEqual(
      [
        { id: "mine-1", arm: "student", reason: "split" },
        { id: "mine-1", arm: "teacher", reason: "shadow" },
        { id: generated, arm: "teacher", reason: "forced" },
        { id: "mine-2", arm: "student", reason: "compare" },
        { id: "mine-2", arm: "teacher", reason: "compare" },
      ].sort((a, b) => (a.id === b.id ? a.arm.localeCompare(b.arm) : a.id < b.id ? -1 : 1)),
    );
    expect(compared.response.headers.get("X-Request-Id")).toBe("mine-2");
  });

  it("counts two requests that reuse one id as two, each with its own rows", async () => {
    const since = Date.now();
    await classify(app, 5, { ...force("student"), "X-Request-Id": "reused" });
    await new Promise((r) => setTimeout(r, 5)); // another millisecond: the key is (id, arrival time, arm)
    await classify(app, 6, { ...force("student"), "X-Request-Id": "reused" });
    expect((await storedIds(since)).filter((r) => r.id === "reused")).toHaveLength(2);
  });

  it("is on the Worker's own answer when it cannot start (outside the app)", async () => {
    const sent = await worker.fetch!(
      new Request("http://x/v2", { headers: { "X-Request-Id": "boot-1" } }),
      { MAX_BODY_BYTES: "4MB" },
      createExecutionContext(),
    );
    expect(sent.status).toBe(500);
    expect(sent.headers.get("X-Request-Id")).toBe("boot-1");
    const made = await worker.fetch!(
      new Request("http://x/v2", { headers: { "X-Request-Id": "not valid" } }),
      { MAX_BODY_BYTES: "4MB" },
      createExecutionContext(),
    );
    expect(made.headers.get("X-Request-Id")).toMatch(UUID);
  });

  it("is exposed to browsers when CORS is on", async () => {
    const cors = createApp({ store: fixtureStore(), corsOrigins: ["*"] });
    const preflight = await cors.request("/v2/health/live", {
      method: "OPTIONS",
      headers: {
        Origin: "https://a.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-request-id",
      },
    });
    expect(preflight.headers.get("Access-Control-Allow-Headers")).toMatch(/X-Request-Id/i);
    expect(preflight.headers.get("X-Request-Id")).toMatch(UUID);
    const get = await cors.request("/v2/health/live", { headers: { Origin: "https://a.example" } });
    expect(get.headers.get("Access-Control-Expose-Headers")).toMatch(/X-Request-Id/i);
  });
});

describe("the requestId middleware's options", () => {
  it("takes another header, length, pattern and generator", async () => {
    let n = 0;
    const bare = new Hono<{ Variables: { requestId: string } }>();
    bare.use(requestId({ headerName: "X-Trace", maxLength: 4, pattern: /^[a-z]+$/, generate: () => `gen${++n}` }));
    bare.get("/", (c) => c.text(c.get("requestId")));
    bare.get("/raw", () => new Response("built outside the context"));
    const ask = async (path: string, id?: string) => {
      const r = await bare.request(path, { headers: id === undefined ? {} : { "X-Trace": id } });
      return [r.headers.get("X-Trace"), await r.text()];
    };
    expect(await ask("/", "abcd")).toEqual(["abcd", "abcd"]);
    expect(await ask("/", "abcde")).toEqual(["gen1", "gen1"]); // too long
    expect(await ask("/", "AB")).toEqual(["gen2", "gen2"]); // outside the pattern
    expect(await ask("/")).toEqual(["gen3", "gen3"]);
    expect((await ask("/raw", "abc"))[0]).toBe("abc");
  });

  it("validates with the defaults", () => {
    expect(isValidRequestId("")).toBe(false);
    expect(isValidRequestId(crypto.randomUUID())).toBe(true);
    expect(isValidRequestId("a\nb")).toBe(false);
  });
});
