// Bad uploads to the classify endpoints: each a 4xx `{"error": "..."}`, and the isolate keeps serving.
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { encodeFlatGreyJpeg } from "./grey-jpeg.ts";
import { fixtureApp, fixtureStore, jpegs } from "./helpers.ts";

const app = fixtureApp({ limits: { maxImageSide: 1000, maxImagePixels: 250_000, maxBodyBytes: 256 * 1024 } });
const png = encodePng({ width: 30, height: 20, channels: 1, depth: 8, data: new Uint8Array(600).fill(100) });

function post(body: BodyInit, headers: Record<string, string> = { "Content-Type": "application/octet-stream" }, path = "/v1/classify") {
  return app.request(path, { method: "POST", headers, body });
}

async function expectError(res: Response | Promise<Response>, status: number, match: RegExp): Promise<void> {
  const r = await res;
  const body = (await r.json()) as Record<string, unknown>;
  expect(r.status, JSON.stringify(body)).toBe(status);
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatch(match);
  expect(body.error).not.toMatch(/\n\s+at |\.ts:\d|\.js:\d|node_modules/);
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
    await expectError(post(new Uint8Array(0)), 400, /body is empty/);
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
    await expectError(post(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 1, 2, 3])), 400, /cannot decode the JPEG image/);
    const jpeg = jpegs.gradient!;
    await expectError(post(jpeg.slice(0, 700)), 400, /cannot decode the JPEG image/);
    await expectError(post(withPngSize(png, 0, 20)), 400, /claims 0x20 pixels/);
  });

  it("images over the size limits (413), before decoding", async () => {
    await expectError(post(withPngSize(png, 100_000, 100_000)), 413, /100000x100000; the limit is 1000 pixels a side and 250000 pixels in all/);
    await expectError(post(encodePng({ width: 600, height: 500, channels: 1, depth: 8, data: new Uint8Array(300_000) })), 413, /600x500/);
    const big = encodeFlatGreyJpeg(16, 16, () => 10);
    const sof = big.indexOf(0xc0, 2) - 1; // FF C0 segment: length(2) precision(1) height(2) width(2)
    new DataView(big.buffer).setUint16(sof + 5, 60000);
    await expectError(post(big), 413, /16x60000/);
  });

  it("a decompression bomb: image data that inflates beyond its dimensions (413)", async () => {
    // 2000x2000 zeros deflate to a few kB; relabelled as 10x10 they would inflate to 4 MB.
    const bomb = withPngSize(encodePng({ width: 2000, height: 2000, channels: 1, depth: 8, data: new Uint8Array(4_000_000) }), 10, 10);
    expect(bomb.length).toBeLessThan(20_000);
    await expectError(post(bomb), 413, /inflates beyond what its dimensions need/);
  });

  it("interlaced PNGs below 8 bits (415), which the decoder cannot read", async () => {
    const packed = encodePng({ width: 16, height: 4, channels: 1, depth: 1, data: new Uint8Array(8) }, { interlace: "Adam7" });
    await expectError(post(packed), 415, /interlaced PNGs with fewer than 8 bits/);
  });

  it("malformed or empty multipart forms (400)", async () => {
    await expectError(post("--x\r\nnot a form", { "Content-Type": "multipart/form-data; boundary=yyy" }), 400, /malformed multipart/);
    const form = new FormData();
    form.append("note", "no file here");
    await expectError(app.request("/v1/classify", { method: "POST", body: form }), 400, /file field named "image"/);
  });

  it("bad k, unknown models, and a server without a default student", async () => {
    for (const k of ["0", "-1", "abc", "2.5", ""]) await expectError(post(png, undefined, `/v1/classify?k=${k}`), 400, /k must be a positive integer/);
    await expectError(post(png, undefined, "/v1/models/nope/classify"), 404, /unknown model "nope"/);
    const empty = createApp({ store: fixtureStore({ schemaVersion: 1, defaultStudent: "none", models: [] }) });
    await expectError(empty.request("/v1/classify", { method: "POST", body: png }), 404, /no default student/);
  });

  it("a body over the limit (413)", async () => {
    await expectError(post(new Uint8Array(300 * 1024)), 413, /over the limit of 262144 bytes/);
  });

  it("keeps serving after all of the above", async () => {
    const res = await post(png);
    expect(res.status).toBe(200);
  });
});
