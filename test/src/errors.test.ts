// Bad input on every endpoint: a 4xx `{"error": "..."}` that names the problem, no internals, and the
// isolate keeps serving.
import { describe, expect, it } from "vitest";
import { HEADER_LENGTH } from "../../src/oip/types.ts";
import { fixtureApp, inferBody, postJson } from "./helpers.ts";

const app = fixtureApp({ limits: { maxBodyBytes: 16 * 1024, maxBatch: 4 } });
const zeros = (n: number) => new Array<number>(n).fill(0);
const good = () => inferBody("grey28", [1, 1, 28, 28], zeros(784));

async function expectError(res: Response | Promise<Response>, status: number, match: RegExp): Promise<void> {
  const r = await res;
  expect(r.status).toBe(status);
  expect(r.headers.get("Content-Type")).toMatch(/^application\/json/);
  const body = (await r.json()) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(["error"]);
  const error = body.error as string;
  expect(error).toMatch(match);
  // No stack frames or file paths.
  expect(error).not.toMatch(/\n\s+at |\.ts:\d|\.js:\d|node_modules|file:\/\//);
}

const infer = (body: unknown, headers?: Record<string, string>) => postJson(app, "/v2/models/grey28/infer", body, headers);
// Bytes, so that no Content-Type is implied (a Triton client sends none).
const raw = (body: string | Uint8Array, headers: Record<string, string>) =>
  app.request("/v2/models/grey28/infer", { method: "POST", headers, body: typeof body === "string" ? new TextEncoder().encode(body) : body });

describe("infer rejects", () => {
  it("an unknown model or version (404)", async () => {
    await expectError(postJson(app, "/v2/models/nope/infer", good()), 404, /unknown model "nope"/);
    await expectError(postJson(app, "/v2/models/grey28/versions/7/infer", good()), 404, /no version "7"/);
    await expectError(app.request("/v2/models/nope"), 404, /unknown model/);
    await expectError(app.request("/v2/models/nope/ready"), 404, /unknown model/);
  });

  it("malformed JSON", async () => {
    await expectError(raw('{"inputs": [', { "Content-Type": "application/json" }), 400, /malformed JSON/);
    await expectError(raw("", { "Content-Type": "application/json" }), 400, /malformed JSON/);
    await expectError(raw('{"x": NaN}', { "Content-Type": "application/json" }), 400, /malformed JSON/);
    await expectError(infer([1, 2]), 400, /request body must be a JSON object/);
  });

  it("a wrong content type (415)", async () => {
    await expectError(raw(JSON.stringify(good()), { "Content-Type": "application/x-www-form-urlencoded" }), 415, /Content-Type application\/x-www-form-urlencoded/);
    await expectError(raw(JSON.stringify(good()), { "Content-Type": "text/plain" }), 415, /send application\/json/);
  });

  it("a body over the limit (413)", async () => {
    await expectError(infer(inferBody("grey28", [4, 1, 28, 28], new Array(4 * 784).fill(0.123456789))), 413, /over the limit of 16384 bytes/);
    // Without a Content-Length (a stream), the limit still holds.
    const big = new Uint8Array(70 * 1024).fill(32);
    const stream = new ReadableStream({ start: (c) => (c.enqueue(big), c.close()) });
    await expectError(app.request("/v2/models/grey28/infer", { method: "POST", headers: { "Content-Type": "application/json" }, body: stream, duplex: "half" } as RequestInit), 413, /over the limit/);
  });

  it("a tensor of the wrong shape, datatype or length", async () => {
    await expectError(infer(inferBody("grey28", [1, 1, 32, 32], zeros(1024))), 400, /shape is \[1, 1, 32, 32\]; model "grey28" takes \[N, 1, 28, 28\]/);
    await expectError(infer(inferBody("grey28", [1, 784], zeros(784))), 400, /shape is \[1, 784\]/);
    await expectError(infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "INT64", data: zeros(784) }] }), 400, /datatype "INT64": model "grey28" takes FP32/);
    await expectError(infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], data: zeros(784) }] }), 400, /datatype is missing/);
    await expectError(infer(inferBody("grey28", [1, 1, 28, 28], zeros(783))), 400, /has 783 values; shape \[1, 1, 28, 28\] needs 784/);
    await expectError(infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [[zeros(28)]] }] }), 400, /data\[0\]\[0\]\[0\] must be an array of 28/);
    await expectError(infer({ inputs: [{ name: "image", shape: [1, 1, 28, 28], datatype: "FP32", data: zeros(784) }] }), 400, /name must be "input"/);
    await expectError(infer({ inputs: [] }), 400, /exactly one tensor/);
    await expectError(infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [...zeros(783), "1"] }] }), 400, /data\[783\] must be a number, got string/);
    await expectError(infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [...zeros(783), null] }] }), 400, /data\[783\] must be a number, got null/);
  });

  it("NaN or Infinity, as JSON or in binary", async () => {
    await expectError(infer(inferBody("grey28", [1, 1, 28, 28], [...zeros(783), 1e39])), 400, /data\[783\] is 1e\+39: values must be finite FP32/);
    const json = new TextEncoder().encode(JSON.stringify({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", parameters: { binary_data_size: 784 * 4 } }] }));
    for (const bad of [NaN, Infinity]) {
      const body = new Uint8Array(json.length + 784 * 4);
      body.set(json);
      new DataView(body.buffer).setFloat32(json.length + 10 * 4, bad, true);
      await expectError(raw(body, { "Content-Type": "application/octet-stream", [HEADER_LENGTH]: String(json.length) }), 400, new RegExp(`value 10 is ${bad}`));
    }
  });

  it("a batch over the limit, or empty", async () => {
    await expectError(infer(inferBody("grey28", [5, 1, 28, 28], zeros(5 * 784))), 400, /batch 5; it must be between 1 and 4/);
    await expectError(infer(inferBody("grey28", [0, 1, 28, 28], [])), 400, /batch 0/);
  });

  it("bad outputs, ids and parameters", async () => {
    await expectError(infer({ ...good(), outputs: [{ name: "features" }] }), 400, /outputs\[0\].name must be one of "logits", "probabilities"/);
    await expectError(infer({ ...good(), outputs: [{ name: "logits" }, { name: "logits" }] }), 400, /requested twice/);
    await expectError(infer({ ...good(), outputs: [{ name: "logits", parameters: { classification: 3 } }] }), 400, /classification extension is not supported/);
    await expectError(infer({ ...good(), id: 42 }), 400, /id must be a string/);
    await expectError(infer({ ...good(), parameters: { binary_data_output: "yes" } }), 400, /binary_data_output must be a boolean/);
  });

  it("a bad binary section or header value", async () => {
    const json = JSON.stringify({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", parameters: { binary_data_size: 784 * 4 } }] });
    await expectError(raw(json + "abc", { [HEADER_LENGTH]: "banana" }), 400, /Inference-Header-Content-Length must be an integer/);
    await expectError(raw(json, { [HEADER_LENGTH]: "99999" }), 400, /Inference-Header-Content-Length must be an integer between 0 and the body length/);
    await expectError(raw(json + "abcd", { [HEADER_LENGTH]: String(json.length) }), 400, /binary_data_size is 3136 but the binary section has 4 bytes/);
    await expectError(raw(JSON.stringify(good()) + "abcd", { [HEADER_LENGTH]: String(JSON.stringify(good()).length) }), 400, /4 bytes of binary data but no input claims them/);
  });
});

describe("every endpoint", () => {
  it("answers unknown routes with a JSON 404", async () => {
    await expectError(app.request("/v3/whatever"), 404, /no route for GET \/v3\/whatever/);
    await expectError(app.request("/v2/models/grey28/infer"), 404, /no route for GET/);
  });

  it("keeps serving after all of the above", async () => {
    for (let i = 0; i < 3; i++) {
      await infer({ inputs: "garbage" });
      await raw("{", { "Content-Type": "application/json" });
      await infer(inferBody("grey28", [1, 1, 28, 28], [...zeros(783), 1e39]));
    }
    const res = await infer(good());
    expect(res.status).toBe(200);
  });
});

describe("CORS", () => {
  it("is off by default", async () => {
    const res = await app.request("/v2", { headers: { Origin: "https://example.com" } });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    const pre = await app.request("/v2/models/grey28/infer", { method: "OPTIONS", headers: { Origin: "https://example.com", "Access-Control-Request-Method": "POST" } });
    expect(pre.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("allows exactly the configured origins", async () => {
    const withCors = fixtureApp({ corsOrigins: ["https://app.example.com"] });
    const ok = await withCors.request("/v2", { headers: { Origin: "https://app.example.com" } });
    expect(ok.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example.com");
    expect(ok.headers.get("Access-Control-Expose-Headers")).toMatch(/Server-Timing/);
    const other = await withCors.request("/v2", { headers: { Origin: "https://evil.example.com" } });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});
