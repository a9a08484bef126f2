// The model store: sha256 and size checks, lazy one-per-isolate sessions, failures that stay local.
import { describe, expect, it } from "vitest";
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import { createApp } from "../../src/app.ts";
import type { Engine } from "../../src/models/engine.ts";
import { ortWebEngine } from "../../src/models/ort-web.ts";
import { ModelStore } from "../../src/models/store.ts";
import { fixtureFiles, fixtures, inferBody, postJson, postJsonAsAdmin } from "./helpers.ts";

function withEntry(name: string, change: Partial<ModelEntry>): Manifest {
  return {
    ...fixtures.manifest,
    models: fixtures.manifest.models.map((m) => (m.name === name ? { ...m, ...change } : m)),
  };
}

const greyInfer = inferBody("grey28", [1, 1, 28, 28], new Array(784).fill(0));

type App = ReturnType<typeof createApp>;

/**
 * A 503 for grey28: anonymous callers learn only that the model is unavailable; the admin gets the
 * reason (file names, digests).
 */
async function unavailableDetail(app: App): Promise<string> {
  const anonymous = await postJson(app, "/v2/models/grey28/infer", greyInfer);
  expect(anonymous.status).toBe(503);
  expect(await anonymous.json()).toEqual({ error: 'model "grey28" is unavailable' });
  const admin = await postJsonAsAdmin(app, "/v2/models/grey28/infer", greyInfer);
  expect(admin.status).toBe(503);
  const body = (await admin.json()) as { error: string; detail: string };
  expect(body.error).toBe('model "grey28" is unavailable');
  return body.detail;
}

describe("integrity", () => {
  it("refuses a model whose sha256 does not match, and keeps serving the others", async () => {
    const app = createApp({
      store: new ModelStore(withEntry("grey28", { sha256: "0".repeat(64) }), fixtureFiles, ortWebEngine),
    });
    expect(await unavailableDetail(app)).toMatch(/grey28.*has sha256 [0-9a-f]{64}, the manifest says 0{64}/);
    const ready = await app.request("/v2/models/grey28/ready");
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ name: "grey28", ready: false });
    expect((await app.request("/v2/health/ready")).status).toBe(503);
    const other = await postJson(
      app,
      "/v2/models/rgb32/infer",
      inferBody("rgb32", [1, 3, 32, 32], new Array(3072).fill(0)),
    );
    expect(other.status).toBe(200);
  });

  it("refuses a file of the wrong size, or one that is not bundled", async () => {
    const entry = fixtures.manifest.models.find((m) => m.name === "grey28")!;
    const short = createApp({
      store: new ModelStore(withEntry("grey28", { bytes: entry.bytes + 1 }), fixtureFiles, ortWebEngine),
    });
    expect(await unavailableDetail(short)).toMatch(/has \d+ bytes, the manifest says \d+/);
    const missing = createApp({ store: new ModelStore(fixtures.manifest, {}, ortWebEngine) });
    expect(await unavailableDetail(missing)).toMatch(/file grey28.onnx is not bundled/);
  });

  it("answers 503 for bytes the runtime cannot load, whatever their digest", async () => {
    const junk = new TextEncoder().encode("this is not an ONNX model");
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", junk)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");
    const manifest = withEntry("grey28", { sha256: digest, bytes: junk.length });
    const app = createApp({ store: new ModelStore(manifest, { ...fixtureFiles, "grey28.onnx": junk }, ortWebEngine) });
    expect(await unavailableDetail(app)).toMatch(/the runtime refused grey28.onnx/);
    expect(
      (await postJson(app, "/v2/models/rgb32/infer", inferBody("rgb32", [1, 3, 32, 32], new Array(3072).fill(0))))
        .status,
    ).toBe(200);
  });
});

describe("sessions", () => {
  it("are created on first use, once per model, even under concurrent first requests", async () => {
    const created: string[] = [];
    const counting: Engine = {
      createSession: (bytes, entry) => {
        created.push(entry.name);
        return ortWebEngine.createSession(bytes, entry);
      },
    };
    const app = createApp({ store: new ModelStore(fixtures.manifest, fixtureFiles, counting) });
    await app.request("/v2");
    await app.request("/v2/models/grey28");
    expect(created).toEqual([]);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => postJson(app, "/v2/models/grey28/infer", greyInfer)),
    );
    expect(answers.map((r) => r.status)).toEqual(new Array(8).fill(200));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect(created).toEqual(["grey28"]);
    // Only a request that waited for the load shows it in Server-Timing.
    expect(answers.filter((r) => /load;dur=/.test(r.headers.get("Server-Timing")!)).length).toBeGreaterThanOrEqual(1);
    const later = await postJson(app, "/v2/models/grey28/infer", greyInfer);
    expect(later.headers.get("Server-Timing")).not.toMatch(/load;dur=/);
  });
});
