// Every route /openapi.json documents answers as documented: the test calls each documented method
// and path on the app (A/B routing on, the fixture teacher, a fresh D1), with a good request and
// with bad ones, checks that the status is the one expected and one the document lists for that
// route, and that the JSON body validates against the document's schema for that status (a JSON
// Schema 2020-12 validator that runs in workerd). A documented route without a call here, or a call
// to an undocumented one, fails.
import { Validator } from "@cfworker/json-schema";
import { beforeAll, describe, expect, it } from "vitest";
import { buildOpenApiDocument } from "../../src/api/openapi.ts";
import { abApp, asAdmin, migrate, png, send } from "./ab-helpers.ts";
import { entryOf, fixtures, inferBody } from "./helpers.ts";

// biome-ignore lint/suspicious/noExplicitAny: the document is walked by path, and the assertions check every value read
type Json = Record<string, any>;
interface Call {
  path: string;
  init?: RequestInit;
  /** The status this call must get. */
  status: number;
}

const app = abApp();
beforeAll(migrate);

const student = entryOf(fixtures.manifest.defaultStudent);
const dims = student.input.shape.map((d) => (d === -1 ? 1 : d));
const json = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { "Content-Type": "application/json", ...headers },
  body: JSON.stringify(body),
});
const image = (headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "Content-Type": "image/png", ...headers },
  body: png(7),
});
const admin = (method = "GET"): RequestInit => ({ method, headers: asAdmin });
const goodInfer = () => json("POST", inferBody(student.name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1))));
/** What the calls share: the API key made by POST /v1/keys, for DELETE /v1/keys/{id}. */
const made: { keyId?: string } = {};

const oip = (base: string, unknownAt: string): Record<string, () => Call[]> => ({
  [`GET ${base}`]: () => [
    { path: base.replace("{name}", student.name).replace("{version}", student.version), status: 200 },
    { path: unknownAt, status: 404 },
  ],
  [`GET ${base}/config`]: () => [
    { path: `${base}/config`.replace("{name}", student.name).replace("{version}", student.version), status: 200 },
    { path: `${unknownAt}/config`, status: 404 },
  ],
  [`GET ${base}/ready`]: () => [
    { path: `${base}/ready`.replace("{name}", student.name).replace("{version}", student.version), status: 200 },
    { path: `${unknownAt}/ready`, status: 404 },
  ],
  [`POST ${base}/infer`]: () => {
    const path = `${base}/infer`.replace("{name}", student.name).replace("{version}", student.version);
    return [
      { path, init: goodInfer(), status: 200 },
      { path, init: json("POST", [1, 2]), status: 400 },
      { path, init: { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" }, status: 415 },
      { path: `${unknownAt}/infer`, init: goodInfer(), status: 404 },
    ];
  },
});

const CALLS: Record<string, () => Call[]> = {
  "GET /v2": () => [{ path: "/v2", status: 200 }],
  "GET /v2/health/live": () => [{ path: "/v2/health/live", status: 200 }],
  "GET /v2/health/ready": () => [{ path: "/v2/health/ready", status: 200 }],
  ...oip("/v2/models/{name}", "/v2/models/no-such-model"),
  ...oip("/v2/models/{name}/versions/{version}", `/v2/models/${student.name}/versions/no-such-version`),

  "POST /v1/classify": () => [
    { path: "/v1/classify?k=2", init: image(), status: 200 },
    { path: "/v1/classify?k=0", init: image(), status: 400 },
    {
      path: "/v1/classify",
      init: { method: "POST", headers: { "Content-Type": "text/plain" }, body: "not an image" },
      status: 415,
    },
    { path: "/v1/classify", init: image({ Authorization: "Bearer ndk_not-a-key" }), status: 401 },
    { path: "/v1/classify", init: image({ "X-Force-Arm": "teacher" }), status: 403 },
  ],
  "POST /v1/models/{name}/classify": () => [
    { path: `/v1/models/${student.name}/classify`, init: image(), status: 200 },
    { path: "/v1/models/no-such-model/classify", init: image(), status: 404 },
  ],
  "POST /v1/compare": () => [
    { path: "/v1/compare", init: image(asAdmin), status: 200 },
    { path: "/v1/compare", init: image(), status: 403 },
    { path: "/v1/compare?model=no-such-model", init: image(asAdmin), status: 404 },
  ],

  "GET /v1/report": () => [
    { path: "/v1/report?since=1h", init: admin(), status: 200 },
    { path: "/v1/report?since=yesterday", init: admin(), status: 400 },
    { path: "/v1/report", status: 401 },
  ],
  "GET /v1/config": () => [{ path: "/v1/config", init: admin(), status: 200 }],
  "PATCH /v1/config": () => [
    {
      path: "/v1/config",
      init: json("PATCH", { shadowPercent: 0, canary: { minSamples: 100 } }, asAdmin),
      status: 200,
    },
    { path: "/v1/config", init: json("PATCH", { split: 5 }, asAdmin), status: 400 },
  ],

  "GET /v1/keys": () => [{ path: "/v1/keys", init: admin(), status: 200 }],
  "POST /v1/keys": () => [
    { path: "/v1/keys", init: json("POST", { name: "contract", rights: ["compare"] }, asAdmin), status: 201 },
    { path: "/v1/keys", init: json("POST", { name: "contract", rights: ["admin"] }, asAdmin), status: 400 },
  ],
  "DELETE /v1/keys/{id}": () => [
    { path: `/v1/keys/${made.keyId}`, init: admin("DELETE"), status: 200 },
    { path: "/v1/keys/no-such-key", init: admin("DELETE"), status: 404 },
  ],

  "GET /v1/canary": () => [
    { path: "/v1/canary?limit=5", init: admin(), status: 200 },
    { path: "/v1/canary?limit=0", init: admin(), status: 400 },
  ],
  "POST /v1/canary/start": () => [{ path: "/v1/canary/start", init: admin("POST"), status: 200 }],
  "POST /v1/canary/pause": () => [{ path: "/v1/canary/pause", init: admin("POST"), status: 200 }],
  "POST /v1/canary/resume": () => [{ path: "/v1/canary/resume", init: admin("POST"), status: 200 }],
  "POST /v1/canary/stop": () => [
    { path: "/v1/canary/stop", init: admin("POST"), status: 200 },
    { path: "/v1/canary/stop", init: admin("POST"), status: 409 },
  ],
};

describe("/openapi.json", () => {
  it("is served by the app, and is the document built from the route table", async () => {
    const { response } = await send(app, "/openapi.json");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(buildOpenApiDocument());
  });
});

describe("every documented route answers as documented", async () => {
  const { response } = await send(app, "/openapi.json");
  const document = (await response.json()) as Json;
  const operations = Object.entries(document.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op: op as Json })),
  );

  it("has a call here for each documented route, and none for another", () => {
    expect(Object.keys(CALLS).sort()).toEqual(operations.map((o) => o.key).sort());
  });

  // In document order, one route after the other: a key is made before it is revoked, a canary started before it is paused.
  it.each(operations.map((o) => [o.key, o.op] as const))("%s", async (key, op) => {
    for (const call of CALLS[key]!()) {
      const { response } = await send(app, call.path, call.init);
      const body = response.headers.get("Content-Type")?.startsWith("application/json")
        ? await response.json()
        : await response.text();
      const where = `${call.init?.method ?? "GET"} ${call.path}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`;
      expect(response.status, where).toBe(call.status);
      const documented = op.responses[String(response.status)];
      expect(documented, `${where}: status not in the document`).toBeDefined();
      const schema = documented.content?.["application/json"]?.schema;
      expect(schema, `${where}: no JSON schema documented`).toBeDefined();
      expect(typeof body, `${where}: not JSON`).toBe("object");
      const result = new Validator(schema, "2020-12", false).validate(body);
      expect(
        result.errors.map((e) => `${e.instanceLocation}: ${e.error}`),
        where,
      ).toEqual([]);
      if (key === "POST /v1/keys" && response.status === 201) made.keyId = (body as { id: string }).id;
    }
  });
});
