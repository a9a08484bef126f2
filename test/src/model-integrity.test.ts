// A model file damaged after export (a flipped byte, a truncated copy) is refused by the API with an
// error that names the model and the mismatch, against the manifest the exporter wrote.
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import { ModelStore } from "../../src/models/store.ts";
import { entryOf, fixtureFiles, fixtures, inferBody, postJson, postJsonAsAdmin } from "./helpers.ts";

const infer = inferBody("grey28", [1, 1, 28, 28], new Array(784).fill(0.5));

function appWithFile(bytes: Uint8Array) {
  return createApp({
    store: new ModelStore(fixtures.manifest, { ...fixtureFiles, "grey28.onnx": bytes }, ortWebEngine),
  });
}

describe("a damaged ONNX file under an intact manifest", () => {
  it("is refused when one byte of its weights is flipped", async () => {
    const damaged = Uint8Array.from(fixtureFiles["grey28.onnx"]!);
    damaged[damaged.length - 100] = damaged[damaged.length - 100]! ^ 0x01;
    const app = appWithFile(damaged);
    const res = await postJson(app, "/v2/models/grey28/infer", infer);
    expect(res.status).toBe(503);
    // Digests are for the admin (and the log), not for anyone who asks.
    expect(await res.json()).toEqual({ error: 'model "grey28" is unavailable' });
    const { detail } = (await (await postJsonAsAdmin(app, "/v2/models/grey28/infer", infer)).json()) as {
      detail: string;
    };
    expect(detail).toMatch(
      new RegExp(`grey28.*has sha256 [0-9a-f]{64}, the manifest says ${entryOf("grey28").sha256}`),
    );
  });

  it("is refused when truncated", async () => {
    const truncated = fixtureFiles["grey28.onnx"]!.subarray(0, 1000);
    const res = await postJsonAsAdmin(appWithFile(truncated), "/v2/models/grey28/infer", infer);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/grey28.*has 1000 bytes, the manifest says \d+/);
  });
});
