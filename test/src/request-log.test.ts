// The request log middleware on an app of its own: one JSON line per request, with the route
// pattern, the status, what the route noted and the error it ended in; sampling; and no credential
// the request carried anywhere in the line.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { requestId } from "../../src/middleware/request-id.ts";
import {
  type LogLevel,
  type RequestLogOptions,
  type RequestLogRecord,
  noteRequest,
  redact,
  requestLog,
  secretsOf,
} from "../../src/middleware/request-log.ts";

class DetailedError extends Error {
  override name = "DetailedError";
  constructor(
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }
}

function loggedApp(options: Omit<RequestLogOptions, "sink"> = {}) {
  const lines: { line: string; level: LogLevel }[] = [];
  const app = new Hono();
  app.use(requestId());
  app.use(requestLog({ ...options, sink: (line, level) => lines.push({ line, level }) }));
  app.post("/items/:id/classify", (c) => {
    noteRequest(c, { model: { name: "small", version: "3" } });
    noteRequest(c, { arm: "student", inferenceMs: 12.3456 });
    return c.json({ ok: true });
  });
  app.get("/teacher-down", (c) => {
    noteRequest(c, { arm: "student", teacherFault: "timeout", teacherFaultDetail: "no answer within the timeout" });
    return c.json({ ok: true });
  });
  app.get("/broken", () => {
    throw new Error("wiring", { cause: new TypeError("x is undefined") });
  });
  app.get("/misconfigured", () => {
    throw new DetailedError("model is unavailable", "digest mismatch in small.onnx");
  });
  app.get("/refused", () => {
    throw new HTTPException(403, { message: "no" });
  });
  app.get("/echo", (c) => {
    throw new HTTPException(400, {
      message: `bad header ${c.req.header("authorization")} and ${c.req.header("cookie")}`,
    });
  });
  app.onError((err, c) =>
    err instanceof HTTPException
      ? c.json({ error: err.message }, err.status)
      : c.json({ error: "internal error" }, 500),
  );
  const records = () => lines.map(({ line }) => JSON.parse(line) as RequestLogRecord);
  return { app, lines, records };
}

describe("requestLog", () => {
  it("writes one JSON line per request with the route pattern, status, notes and times", async () => {
    const { app, lines, records } = loggedApp();
    const response = await app.request("/items/42/classify?k=3", {
      method: "POST",
      headers: { "X-Request-Id": "req-1" },
    });
    expect(response.status).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe("info");
    const [record] = records();
    expect(record).toMatchObject({
      event: "request",
      requestId: "req-1",
      method: "POST",
      route: "/items/:id/classify",
      status: 200,
      arm: "student",
      model: "small",
      modelVersion: "3",
      inferenceMs: 12.35,
    });
    expect(record!.totalMs).toBeGreaterThanOrEqual(0);
    expect(record!.error).toBeUndefined();
    expect(lines[0]!.line).not.toContain("42");
    expect(lines[0]!.line).not.toContain("k=3");
  });

  it("gives a teacher fault, and arm none with no route for an unmatched request", async () => {
    const { app, records } = loggedApp();
    await app.request("/teacher-down");
    await app.request("/nowhere/7");
    const [fault, missing] = records();
    expect(fault).toMatchObject({
      route: "/teacher-down",
      status: 200,
      arm: "student",
      teacherFault: "timeout",
      teacherFaultDetail: "no answer within the timeout",
    });
    expect(missing).toMatchObject({ route: null, status: 404, arm: "none" });
    expect(missing!.model).toBeUndefined();
    expect(missing!.inferenceMs).toBeUndefined();
  });

  it("logs an error's cause: name, message, detail, its own cause, and the stack of a 500 at error level", async () => {
    const { app, lines, records } = loggedApp();
    await app.request("/broken");
    await app.request("/misconfigured");
    await app.request("/refused");
    expect(lines.map((l) => l.level)).toEqual(["error", "error", "info"]);
    const [broken, misconfigured, refused] = records();
    expect(broken).toMatchObject({
      status: 500,
      error: { name: "Error", message: "wiring", cause: { name: "TypeError", message: "x is undefined" } },
    });
    expect(broken!.error!.stack).toContain("wiring");
    expect(misconfigured).toMatchObject({
      status: 500,
      error: { name: "DetailedError", message: "model is unavailable", detail: "digest mismatch in small.onnx" },
    });
    expect(misconfigured!.error!.stack).toBeUndefined();
    expect(refused).toMatchObject({ status: 403, route: "/refused", error: { name: "HTTPException", message: "no" } });
  });

  it("never writes the request's credentials, even when an error message echoes them", async () => {
    const { app, lines } = loggedApp();
    const token = "nd_live_0123456789abcdef";
    const session = 'sess"ion-value\\9876543210';
    const apiKey = "key-abcdefghijklmnop";
    const response = await app.request("/echo?api_key=query-secret-123", {
      headers: {
        Authorization: `Bearer ${token}`,
        Cookie: `narrowdeep_dashboard=${session}; theme=dark`,
        "X-Api-Key": apiKey,
      },
    });
    expect(response.status).toBe(400);
    expect(lines).toHaveLength(1);
    const line = lines[0]!.line;
    expect(JSON.parse(line)).toMatchObject({
      status: 400,
      route: "/echo",
      error: { message: "bad header [redacted] and [redacted]" },
    });
    for (const secret of [token, "sess", "9876543210", apiKey, "query-secret-123", "api_key"])
      expect(line).not.toContain(secret);
  });

  it("logs only what the sample keeps", async () => {
    const { app, records } = loggedApp({ sample: (r) => r.status >= 400 });
    await app.request("/items/1/classify", { method: "POST" });
    await app.request("/refused");
    expect(records().map((r) => r.status)).toEqual([403]);
  });
});

describe("secretsOf and redact", () => {
  it("finds whole values, bearer tokens and cookie values, skipping the short ones", () => {
    const headers = new Headers({
      Authorization: "Bearer abcdefgh12",
      Cookie: "a=short; b=long-enough-value",
      "X-Other": "not-a-secret-at-all",
    });
    const secrets = secretsOf(headers);
    expect([...secrets].sort()).toEqual([
      "Bearer abcdefgh12",
      "a=short; b=long-enough-value",
      "abcdefgh12",
      "long-enough-value",
    ]);
    expect(secrets[0]).toBe("a=short; b=long-enough-value"); // longest first: a whole value before its pieces
  });

  it("treats every cookie's value as a secret, not the cookies' names", () => {
    const headers = new Headers({ Cookie: "narrowdeep_dashboard=signed.session.value; theme=darkmode" });
    expect(redact(JSON.stringify({ m: "theme=darkmode signed.session.value" }), secretsOf(headers, ["cookie"]))).toBe(
      '{"m":"theme=[redacted] [redacted]"}',
    );
  });

  it("cuts a secret out in its JSON-escaped form", () => {
    const secret = 'quote"and\\slash';
    expect(redact(JSON.stringify({ m: `x ${secret} y` }), [secret])).toBe('{"m":"x [redacted] y"}');
  });
});
