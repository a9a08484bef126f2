// The API's request log in workerd: each request through the app writes one JSON line with what the
// routes noted (arm, model, inference time, teacher fault) and the error it ended in, and never the
// credentials it carried.
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import type { LogLevel, RequestLogRecord } from "../../src/middleware/request-log.ts";
import { ModelStore } from "../../src/models/store.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import { ADMIN_TOKEN, asAdmin, asClient, classify, force, hosts, migrate, png, send } from "./ab-helpers.ts";
import { fixtureFiles, fixtureStore, fixtures } from "./helpers.ts";

beforeAll(migrate);

/** An app over the fixture students (A/B routing against the fixture teacher when `ab`), and the lines it logs. */
function loggedApp({ ab = true, store = fixtureStore() } = {}) {
  const lines: { line: string; level: LogLevel }[] = [];
  const app = createApp({
    store,
    ...(ab ? { abRouting: { teachers: [hosts.entry] } } : {}),
    requestLog: { sink: (line, level) => lines.push({ line, level }) },
  });
  /** The one line the last request wrote, parsed. */
  const last = (): RequestLogRecord => {
    expect(lines).toHaveLength(1);
    const { line } = lines.pop()!;
    expect(line).not.toContain("\n");
    return JSON.parse(line) as RequestLogRecord;
  };
  return { app, lines, last };
}

const student = fixtures.manifest.models.find((m) => m.name === fixtures.manifest.defaultStudent)!;

describe("the request log", () => {
  it("logs a plain classify: route, status, the student's model and inference time, no arm", async () => {
    const { app, last } = loggedApp({ ab: false });
    const { response } = await send(app, "/v1/classify?k=2", {
      method: "POST",
      headers: { "Content-Type": "image/png", "X-Request-Id": "plain-1" },
      body: png(1),
    });
    expect(response.status).toBe(200);
    const record = last();
    expect(record).toMatchObject({
      event: "request",
      requestId: "plain-1",
      method: "POST",
      route: "/v1/classify",
      status: 200,
      arm: "none",
      model: response.headers.get("X-Model-Name"),
      modelVersion: response.headers.get("X-Model-Version"),
    });
    expect(record.inferenceMs).toBeGreaterThanOrEqual(0);
    expect(record.totalMs).toBeGreaterThanOrEqual(record.inferenceMs!);
    expect(record.error).toBeUndefined();
  });

  it("logs an A/B request the teacher answered, with the teacher's round trip", async () => {
    const { app, last } = loggedApp();
    const { response } = await classify(app, 2, force("teacher"), { TEACHER_TIMEOUT_MS: "10000" });
    expect(response.status).toBe(200);
    const record = last();
    expect(record).toMatchObject({
      route: "/v1/classify",
      status: 200,
      arm: "teacher",
      model: hosts.entry.name,
      modelVersion: hosts.entry.version,
      requestId: response.headers.get("X-Request-Id"),
    });
    expect(record.inferenceMs).toBeGreaterThan(0);
    expect(record.teacherFault).toBeUndefined();
  });

  it("logs the teacher's fault when the student answered in its place", async () => {
    const { app, last } = loggedApp();
    const { response } = await classify(app, 3, force("teacher"), { TEACHER_URL: hosts.downUrl });
    expect(response.headers.get("X-Teacher-Fault")).toBe("unreachable");
    const record = last();
    expect(record).toMatchObject({ status: 200, arm: "student", model: student.name, teacherFault: "unreachable" });
    expect(typeof record.teacherFaultDetail).toBe("string");
  });

  it("logs a 4xx with its cause, under the pattern of the route it matched", async () => {
    const { app, lines, last } = loggedApp({ ab: false });
    await send(app, "/v1/models/no-such-model/classify", {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body: png(4),
    });
    expect(lines[0]!.level).toBe("info");
    expect(last()).toMatchObject({
      route: "/v1/models/:name/classify",
      status: 404,
      arm: "none",
      error: { name: "HttpError", message: expect.stringContaining('unknown model "no-such-model"') },
    });
    await send(app, "/v9/nothing");
    expect(last()).toMatchObject({ route: null, status: 404, arm: "none" });
  });

  it("logs a 5xx at error level, with the operator's detail and the teacher's fault before it", async () => {
    const damaged = Uint8Array.from(fixtureFiles[student.file]!).subarray(0, 1000);
    const { app, lines, last } = loggedApp({
      store: new ModelStore(fixtures.manifest, { ...fixtureFiles, [student.file]: damaged }, ortWebEngine),
    });
    const { response } = await classify(app, 5, force("teacher"), { TEACHER_URL: hosts.downUrl });
    expect(response.status).toBe(503);
    expect(lines[0]!.level).toBe("error");
    expect(last()).toMatchObject({
      status: 503,
      arm: "student",
      teacherFault: "unreachable",
      error: {
        name: "HttpError",
        message: `model "${student.name}" is unavailable`,
        detail: expect.stringMatching(/has 1000 bytes/),
      },
    });
  });

  it("never logs the admin token, an API key, a session cookie or a query's key", async () => {
    const { app, lines } = loggedApp();
    const session = "signed-dashboard-session-0123456789";
    const cookie = `${(await asClient("log-client")).Cookie}; narrowdeep_dashboard=${session}`;
    const clientCookie = (await asClient("log-client")).Cookie.split("=").slice(1).join("=");
    const apiKey = "nd_unknown_key_abcdefghijklmnopqrstuvwxyz";
    await classify(
      app,
      6,
      { ...asAdmin, Cookie: cookie, "X-Api-Key": apiKey },
      {},
      "/v1/classify?api_key=query-key-0123456789",
    );
    await classify(app, 7, { Authorization: `Bearer ${apiKey}` }); // an unknown key: a 401 through bearer-auth
    await send(app, "/v1/config?token=query-key-0123456789", {
      headers: { Authorization: "Bearer wrong-admin-guess-0123456789" },
    });
    expect(lines.map((l) => (JSON.parse(l.line) as RequestLogRecord).status)).toEqual([200, 401, 401]);
    for (const { line } of lines) {
      for (const secret of [
        ADMIN_TOKEN,
        session,
        clientCookie,
        apiKey,
        "query-key-0123456789",
        "wrong-admin-guess-0123456789",
        "Bearer",
        "Cookie",
      ]) {
        expect(line, secret).not.toContain(secret);
      }
    }
  });
});
