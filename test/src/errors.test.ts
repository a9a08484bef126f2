// Bad input on every endpoint (OIP infer, then classify uploads): a 4xx `{"error": "..."}` that names
// the problem, no internals, and the isolate keeps serving.
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { HEADER_LENGTH } from "../../src/oip/types.ts";
import { encodeFlatGreyJpeg } from "./flat-jpeg.ts";
import { fixtureApp, fixtureStore, inferBody, jpegs, postJson } from "./helpers.ts";

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

const infer = (body: unknown, headers?: Record<string, string>) =>
  postJson(app, "/v2/models/grey28/infer", body, headers);
// Bytes, so that no Content-Type is implied (a Triton client sends none).
const raw = (body: string | Uint8Array, headers: Record<string, string>) =>
  app.request("/v2/models/grey28/infer", {
    method: "POST",
    headers,
    body: typeof body === "string" ? new TextEncoder().encode(body) : body,
  });

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
    await expectError(
      raw(JSON.stringify(good()), { "Content-Type": "application/x-www-form-urlencoded" }),
      415,
      /Content-Type application\/x-www-form-urlencoded/,
    );
    await expectError(raw(JSON.stringify(good()), { "Content-Type": "text/plain" }), 415, /send application\/json/);
  });

  it("a body over the limit (413)", async () => {
    await expectError(
      infer(inferBody("grey28", [4, 1, 28, 28], new Array(4 * 784).fill(0.123456789))),
      413,
      /over the limit of 16384 bytes/,
    );
    // Without a Content-Length (a stream), the limit still holds.
    const big = new Uint8Array(70 * 1024).fill(32);
    const stream = new ReadableStream({
      start: (c) => {
        c.enqueue(big);
        c.close();
      },
    });
    await expectError(
      app.request("/v2/models/grey28/infer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: stream,
        duplex: "half",
      } as RequestInit),
      413,
      /over the limit/,
    );
  });

  it("a tensor of the wrong shape, datatype or length", async () => {
    await expectError(
      infer(inferBody("grey28", [1, 1, 32, 32], zeros(1024))),
      400,
      /shape is \[1, 1, 32, 32\]; model "grey28" takes \[N, 1, 28, 28\]/,
    );
    await expectError(infer(inferBody("grey28", [1, 784], zeros(784))), 400, /shape is \[1, 784\]/);
    await expectError(
      infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "INT64", data: zeros(784) }] }),
      400,
      /datatype "INT64": model "grey28" takes FP32/,
    );
    await expectError(
      infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], data: zeros(784) }] }),
      400,
      /datatype is missing/,
    );
    await expectError(
      infer(inferBody("grey28", [1, 1, 28, 28], zeros(783))),
      400,
      /has 783 values; shape \[1, 1, 28, 28\] needs 784/,
    );
    await expectError(
      infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [[zeros(28)]] }] }),
      400,
      /data\[0\]\[0\]\[0\] must be an array of 28/,
    );
    await expectError(
      infer({ inputs: [{ name: "image", shape: [1, 1, 28, 28], datatype: "FP32", data: zeros(784) }] }),
      400,
      /name must be "input"/,
    );
    await expectError(infer({ inputs: [] }), 400, /exactly one tensor/);
    await expectError(
      infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [...zeros(783), "1"] }] }),
      400,
      /data\[783\] must be a number, got string/,
    );
    await expectError(
      infer({ inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [...zeros(783), null] }] }),
      400,
      /data\[783\] must be a number, got null/,
    );
  });

  it("NaN or Infinity, as JSON or in binary", async () => {
    await expectError(
      infer(inferBody("grey28", [1, 1, 28, 28], [...zeros(783), 1e39])),
      400,
      /data\[783\] is 1e\+39: values must be finite FP32/,
    );
    const json = new TextEncoder().encode(
      JSON.stringify({
        inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", parameters: { binary_data_size: 784 * 4 } }],
      }),
    );
    for (const bad of [NaN, Infinity]) {
      const body = new Uint8Array(json.length + 784 * 4);
      body.set(json);
      new DataView(body.buffer).setFloat32(json.length + 10 * 4, bad, true);
      await expectError(
        raw(body, { "Content-Type": "application/octet-stream", [HEADER_LENGTH]: String(json.length) }),
        400,
        new RegExp(`value 10 is ${bad}`),
      );
    }
  });

  it("a batch over the limit, or empty", async () => {
    await expectError(
      infer(inferBody("grey28", [5, 1, 28, 28], zeros(5 * 784))),
      400,
      /batch 5; it must be between 1 and 4/,
    );
    await expectError(infer(inferBody("grey28", [0, 1, 28, 28], [])), 400, /batch 0/);
  });

  it("bad outputs, ids and parameters", async () => {
    await expectError(
      infer({ ...good(), outputs: [{ name: "features" }] }),
      400,
      /outputs\[0\].name must be one of "logits", "probabilities"/,
    );
    await expectError(infer({ ...good(), outputs: [{ name: "logits" }, { name: "logits" }] }), 400, /requested twice/);
    await expectError(
      infer({ ...good(), outputs: [{ name: "logits", parameters: { classification: 0 } }] }),
      400,
      /classification must be a positive integer/,
    );
    await expectError(infer({ ...good(), id: 42 }), 400, /id must be a string/);
    await expectError(
      infer({ ...good(), parameters: { binary_data_output: "yes" } }),
      400,
      /binary_data_output must be a boolean/,
    );
  });

  it("an unknown, corrupt or bomb Content-Encoding", async () => {
    const json = JSON.stringify(good());
    await expectError(
      raw(json, { "Content-Type": "application/json", "Content-Encoding": "br" }),
      415,
      /Content-Encoding br is not supported/,
    );
    await expectError(
      raw("definitely not gzip", { "Content-Type": "application/json", "Content-Encoding": "gzip" }),
      400,
      /gzip body is corrupt/,
    );
    // 1 MB of spaces gzip to about 1 kB: within the 16 kB limit compressed, far over it inflated.
    const bomb = new Uint8Array(
      await new Response(
        new Blob([" ".repeat(1 << 20)]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    expect(bomb.length).toBeLessThan(16 * 1024);
    await expectError(
      raw(bomb, { "Content-Type": "application/json", "Content-Encoding": "gzip" }),
      413,
      /inflates beyond the limit of 16384 bytes/,
    );
  });

  it("a bad binary section or header value", async () => {
    const json = JSON.stringify({
      inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", parameters: { binary_data_size: 784 * 4 } }],
    });
    await expectError(
      raw(`${json}abc`, { [HEADER_LENGTH]: "banana" }),
      400,
      /Inference-Header-Content-Length must be an integer/,
    );
    await expectError(
      raw(json, { [HEADER_LENGTH]: "99999" }),
      400,
      /Inference-Header-Content-Length must be an integer between 0 and the body length/,
    );
    await expectError(
      raw(`${json}abcd`, { [HEADER_LENGTH]: String(json.length) }),
      400,
      /binary_data_size is 3136 but the binary section has 4 bytes/,
    );
    await expectError(
      raw(`${JSON.stringify(good())}abcd`, { [HEADER_LENGTH]: String(JSON.stringify(good()).length) }),
      400,
      /4 bytes of binary data but no input claims them/,
    );
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
    const pre = await app.request("/v2/models/grey28/infer", {
      method: "OPTIONS",
      headers: { Origin: "https://example.com", "Access-Control-Request-Method": "POST" },
    });
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

// Classify uploads, against small image and body limits.
const imageApp = fixtureApp({
  limits: { maxImageSide: 1000, maxImagePixels: 250_000, maxBodyBytes: 256 * 1024, maxUploadBytes: 128 * 1024 },
});
const png = encodePng({ width: 30, height: 20, channels: 1, depth: 8, data: new Uint8Array(600).fill(100) });

function post(
  body: BodyInit,
  headers: Record<string, string> = { "Content-Type": "application/octet-stream" },
  path = "/v1/classify",
) {
  return imageApp.request(path, { method: "POST", headers, body });
}

/** A copy of a PNG whose IHDR claims other dimensions (the CRC no longer matches; the limit comes first). */
function withPngSize(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return out;
}

describe("classify rejects", () => {
  it("bytes that are neither PNG nor JPEG (415), and an empty body", async () => {
    await expectError(post(new TextEncoder().encode("GIF89a...")), 415, /must be PNG or JPEG/);
    await expectError(post(new Uint8Array(0)), 400, /image is empty/);
    const form = new FormData();
    form.append("image", new File([], "empty.png"));
    await expectError(imageApp.request("/v1/classify", { method: "POST", body: form }), 400, /image is empty/);
  });

  it("a wrong content type (415)", async () => {
    await expectError(post(png, { "Content-Type": "text/plain" }), 415, /Content-Type text\/plain is not accepted/);
    await expectError(post(png, { "Content-Type": "application/json" }), 415, /not accepted/);
  });

  it("undecodable images (400)", async () => {
    await expectError(post(png.slice(0, png.length - 30)), 400, /cannot decode the PNG image/);
    const corrupt = png.slice();
    corrupt[45] = corrupt[45]! ^ 0xff; // inside IDAT: the CRC catches it
    await expectError(post(corrupt), 400, /cannot decode the PNG image/);
    await expectError(post(png.slice(0, 20)), 400, /cannot decode the PNG image: no IHDR/);
    await expectError(
      post(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 1, 2, 3])),
      400,
      /cannot decode the JPEG image/,
    );
    const jpeg = jpegs.gradient!;
    await expectError(post(jpeg.slice(0, 700)), 400, /cannot decode the JPEG image/);
    await expectError(post(withPngSize(png, 0, 20)), 400, /claims 0x20 pixels/);
  });

  it("images over the size limits (413), before decoding", async () => {
    await expectError(
      post(withPngSize(png, 100_000, 100_000)),
      413,
      /100000x100000; the limit is 1000 pixels a side and 250000 pixels in all/,
    );
    await expectError(
      post(encodePng({ width: 600, height: 500, channels: 1, depth: 8, data: new Uint8Array(300_000) })),
      413,
      /600x500/,
    );
    const big = encodeFlatGreyJpeg(16, 16, () => 10);
    const sof = big.indexOf(0xc0, 2) - 1; // FF C0 segment: length(2) precision(1) height(2) width(2)
    new DataView(big.buffer).setUint16(sof + 5, 60000);
    await expectError(post(big), 413, /16x60000/);
  });

  it("a decompression bomb: image data that inflates beyond its dimensions (413)", async () => {
    // 2000x2000 zeros deflate to a few kB; relabelled as 10x10 they would inflate to 4 MB.
    const bomb = withPngSize(
      encodePng({ width: 2000, height: 2000, channels: 1, depth: 8, data: new Uint8Array(4_000_000) }),
      10,
      10,
    );
    expect(bomb.length).toBeLessThan(20_000);
    await expectError(post(bomb), 413, /inflates beyond what its dimensions need/);
  });

  it("interlaced PNGs below 8 bits (415), which the decoder cannot read", async () => {
    const packed = encodePng(
      { width: 16, height: 4, channels: 1, depth: 1, data: new Uint8Array(8) },
      { interlace: "Adam7" },
    );
    await expectError(post(packed), 415, /interlaced PNGs with fewer than 8 bits/);
  });

  it("malformed or empty multipart forms (400)", async () => {
    await expectError(
      post("--x\r\nnot a form", { "Content-Type": "multipart/form-data; boundary=yyy" }),
      400,
      /malformed multipart/,
    );
    const form = new FormData();
    form.append("note", "no file here");
    await expectError(
      imageApp.request("/v1/classify", { method: "POST", body: form }),
      400,
      /file field named "image"/,
    );
  });

  it("bad k, unknown models, and a server without a default student", async () => {
    for (const k of ["0", "-1", "abc", "2.5", ""])
      await expectError(post(png, undefined, `/v1/classify?k=${k}`), 400, /k must be a positive integer/);
    await expectError(post(png, undefined, "/v1/models/nope/classify"), 404, /unknown model "nope"/);
    const empty = createApp({ store: fixtureStore({ schemaVersion: 1, defaultStudent: "none", models: [] }) });
    await expectError(empty.request("/v1/classify", { method: "POST", body: png }), 404, /no default student/);
  });

  it("a body over the limit (413)", async () => {
    await expectError(post(new Uint8Array(300 * 1024)), 413, /over the limit of 262144 bytes/);
  });

  it("an upload over the upload limit though under the body limit (413): declared, streamed, in a form, or inflated", async () => {
    const over = new Uint8Array(200 * 1024).fill(7);
    const message = /the image is over the upload limit of 131072 bytes/;
    await expectError(post(over), 413, message);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(over);
        controller.close();
      },
    });
    await expectError(
      imageApp.request("/v1/classify", {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body: stream,
        duplex: "half",
      } as RequestInit),
      413,
      message,
    );
    const form = new FormData();
    form.append("image", new File([over], "big.png"));
    await expectError(imageApp.request("/v1/classify", { method: "POST", body: form }), 413, message);
    const gzipped = new Uint8Array(
      await new Response(new Blob([over]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
    );
    await expectError(
      post(gzipped, { "Content-Type": "application/octet-stream", "Content-Encoding": "gzip" }),
      413,
      message,
    );
    // At the limit, the size is no objection (the bytes are: they are no image).
    await expectError(post(over.subarray(0, 128 * 1024)), 415, /must be PNG or JPEG/);
  });

  it("keeps serving after all of the above", async () => {
    const res = await post(png);
    expect(res.status).toBe(200);
  });
});
