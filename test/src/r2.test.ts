/// <reference types="@cloudflare/vitest-pool-workers/types" />
// Models from an R2 bucket (Miniflare's R2, bound as TEST_MODELS and handed to the Worker as MODELS):
// the Worker reads the manifest and files from it, refuses a missing object or a wrong sha256 with a
// 503 and a log line naming the object, and picks up a new version off the request path (waitUntil)
// while a broken new version leaves the old one serving; the A/B routing's teacher follows the
// manifest served.
import { applyD1Migrations, createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import { r2OptionsFromEnv } from "../../src/config/worker-config.ts";
import { DEFAULT_R2_MODELS, MAX_MANIFEST_BYTES } from "../../src/models/r2.ts";
import { createWorker } from "../../src/worker.ts";
import { entryOf, fixtureFiles, fixtures, inferBody } from "./helpers.ts";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MODELS: R2Bucket;
    }
  }
}

const ADMIN_TOKEN = "admin-token-for-the-r2-test-0123456789";
const bucket = env.TEST_MODELS;
const grey = entryOf("grey28");
const int8 = entryOf("grey28-int8");
const fp32Ref = fixtures.references.find((r) => r.model === "grey28" && r.dims[0] === 3)!;
const int8Ref = fixtures.references.find((r) => r.model === "grey28-int8")!;

/** A manifest serving grey28 alone. */
const manifestOf = (entry: ModelEntry): Manifest => ({ schemaVersion: 1, defaultStudent: entry.name, models: [entry] });

async function upload(entry: ModelEntry, bytes: Uint8Array, manifest = manifestOf(entry)): Promise<void> {
  await bucket.put(entry.file, bytes);
  await bucket.put("manifest.json", JSON.stringify(manifest));
}

let errors: string[];
beforeEach(async () => {
  const listed = await bucket.list();
  if (listed.objects.length > 0) await bucket.delete(listed.objects.map((o) => o.key));
  errors = [];
  vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void errors.push(args.map(String).join(" ")));
});
afterEach(() => vi.restoreAllMocks());

/** A Worker over the bucket (checking for new versions on every request), and a way to call it. */
function worker(vars: Record<string, string> = {}, bindings: Record<string, unknown> = {}) {
  const handler = createWorker({ schemaVersion: 1, defaultStudent: "none", models: [] }, {});
  const workerEnv = { MODELS: bucket, MODELS_CHECK_SECONDS: "0", WARMUP_RUNS: "0", ADMIN_TOKEN, ...vars, ...bindings };
  return async (path: string, init: RequestInit = {}, admin = false) => {
    const ctx = createExecutionContext();
    const headers = new Headers(init.headers);
    if (admin) headers.set("Authorization", `Bearer ${ADMIN_TOKEN}`);
    const res = await handler.fetch!(
      new Request(`http://x${path}`, { method: init.method, body: init.body, headers }),
      workerEnv,
      ctx,
    );
    // What the request left to waitUntil (a version check) is done before the next one.
    await waitOnExecutionContext(ctx);
    return res;
  };
}

const infer = (ref: { dims: number[]; input: number[] }, model = "grey28"): RequestInit => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(inferBody(model, ref.dims, ref.input)),
});

async function logits(res: Response): Promise<number[]> {
  expect(res.status).toBe(200);
  return ((await res.json()) as { outputs: { name: string; data: number[] }[] }).outputs.find(
    (o) => o.name === "logits",
  )!.data;
}

const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) < 1e-4);

describe("models from R2", () => {
  it("serves the bucket's models, not the bundled ones", async () => {
    await upload(grey, fixtureFiles["grey28.onnx"]!);
    const call = worker();
    const res = await call("/v2/models/grey28/infer", infer(fp32Ref));
    expect(res.headers.get("X-Model-Version")).toBe(grey.version);
    expect(close(await logits(res), fp32Ref.logits)).toBe(true);
    expect((await call("/v2/models/rgb32")).status).toBe(404);
  });

  it("without a manifest in the bucket answers 503, naming the object to the admin and in the log, and recovers once one is uploaded", async () => {
    const call = worker();
    const anonymous = await call("/v2/health/ready");
    expect(anonymous.status).toBe(503);
    expect(await anonymous.json()).toEqual({ error: "models unavailable" });
    const admin = await call("/v2", {}, true);
    expect(admin.status).toBe(503);
    expect(((await admin.json()) as { detail: string }).detail).toMatch(
      /R2 object MODELS\/manifest\.json does not exist/,
    );
    expect(errors.some((e) => e.includes("MODELS/manifest.json"))).toBe(true);
    await upload(grey, fixtureFiles["grey28.onnx"]!);
    expect((await call("/v2/models/grey28/infer", infer(fp32Ref))).status).toBe(200);
  });

  it("answers 503 for a manifest that is not valid, naming the object", async () => {
    await bucket.put("manifest.json", '{"schemaVersion": 1, "models": "none"}');
    const res = await worker()("/v2", {}, true);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toMatch(
      /^R2 object MODELS\/manifest\.json is not a valid manifest: /,
    );
  });

  it("answers 503 for a model whose object is missing, with a log line naming it; other models still serve", async () => {
    await bucket.put("rgb32.onnx", fixtureFiles["rgb32.onnx"]!);
    const rgb = entryOf("rgb32");
    await bucket.put(
      "manifest.json",
      JSON.stringify({ schemaVersion: 1, defaultStudent: "grey28", serve: ["rgb32"], models: [grey, rgb] }),
    );
    const call = worker();
    const res = await call("/v2/models/grey28/infer", infer(fp32Ref));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: 'model "grey28" is unavailable' });
    // The request's JSON log line carries the 503's cause.
    const line = errors
      .map((e) => JSON.parse(e) as { status: number; error?: { message: string; detail?: string } })
      .find((l) => l.status === 503);
    expect(line?.error).toMatchObject({
      message: 'model "grey28" is unavailable',
      detail: expect.stringMatching(/file grey28\.onnx is not in the R2 bucket MODELS/),
    });
    const other = await call("/v2/models/rgb32/infer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(inferBody("rgb32", [1, 3, 32, 32], new Array(3072).fill(0))),
    });
    expect(other.status).toBe(200);
    // Uploaded later, it is read at its next use after a version check.
    await bucket.put("grey28.onnx", fixtureFiles["grey28.onnx"]!);
    await call("/v2/health/live");
    expect((await call("/v2/models/grey28/infer", infer(fp32Ref))).status).toBe(200);
  });

  it("answers 503 for an object whose sha256 is not the manifest's", async () => {
    // The int8 file under grey28's name: the same size would not matter, the digest does.
    const wrong = { ...grey, bytes: int8.bytes };
    await upload(wrong, fixtureFiles["grey28-int8.onnx"]!);
    const call = worker();
    const res = await call("/v2/models/grey28/infer", infer(fp32Ref), true);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toMatch(
      new RegExp(`grey28\\.onnx has sha256 ${int8.sha256}, the manifest says ${grey.sha256}`),
    );
    expect(errors).toContainEqual(expect.stringMatching(/grey28\.onnx has sha256/));
  });

  it("refuses an object whose size is not the manifest's before reading its body, and a manifest over the cap unread", async () => {
    // The real bucket, watched: which objects' bodies were read.
    const bodiesRead: string[] = [];
    const watched = {
      head: (key: string) => bucket.head(key),
      get: async (key: string) => {
        const object = await bucket.get(key);
        if (!object) return object;
        return new Proxy(object, {
          get(target, property) {
            if (property === "arrayBuffer" || property === "text" || property === "json") bodiesRead.push(key);
            const value = Reflect.get(target, property, target) as unknown;
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      },
    };
    await upload({ ...grey, bytes: grey.bytes + 1 }, fixtureFiles["grey28.onnx"]!);
    const res = await worker({}, { MODELS: watched })("/v2/models/grey28/infer", infer(fp32Ref), true);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toContain(
      `R2 object MODELS/grey28.onnx: it has ${grey.bytes} bytes, the manifest says ${grey.bytes + 1}; not read`,
    );
    expect(bodiesRead).toEqual(["manifest.json"]);

    bodiesRead.length = 0;
    await bucket.put("manifest.json", JSON.stringify({ ...manifestOf(grey), padding: "x".repeat(MAX_MANIFEST_BYTES) }));
    const big = await worker({}, { MODELS: watched })("/v2", {}, true);
    expect(big.status).toBe(503);
    const { detail } = (await big.json()) as { detail: string };
    const size = Number(
      /^R2 object MODELS\/manifest\.json has (\d+) bytes, over the (\d+) a manifest may have; not read$/.exec(
        detail,
      )?.[1],
    );
    expect(size).toBeGreaterThan(MAX_MANIFEST_BYTES);
    expect(detail).toContain(`over the ${MAX_MANIFEST_BYTES} a manifest may have`);
    expect(bodiesRead).toEqual([]);
  });

  it("picks up a new version without a redeploy, after a version check off the request path", async () => {
    await upload(grey, fixtureFiles["grey28.onnx"]!);
    const call = worker({ MODELS_CHECK_SECONDS: "0" });
    const v1 = await call("/v2/models/grey28/infer", infer(fp32Ref));
    expect(v1.headers.get("X-Model-Version")).toBe(grey.version);
    expect(close(await logits(v1), fp32Ref.logits)).toBe(true);
    // Version 2 of grey28 is the int8 file, under a new name; the manifest goes last.
    const v2 = { ...int8, name: "grey28", version: "2", file: "grey28-v2.onnx" };
    const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await upload(v2, fixtureFiles["grey28-int8.onnx"]!);
    // This request still gets version 1; the check it starts (waitUntil) switches to version 2.
    const during = await call("/v2/models/grey28/infer", infer(fp32Ref));
    expect(during.headers.get("X-Model-Version")).toBe(grey.version);
    expect(logged.mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringMatching(/^models: now serving grey28@2 from MODELS\/manifest\.json/),
    );
    const after = await call("/v2/models/grey28/infer", infer(int8Ref));
    expect(after.headers.get("X-Model-Version")).toBe("2");
    expect(close(await logits(after), int8Ref.logits)).toBe(true);
  });

  it("keeps serving the old version when the new one does not verify, and says why in the log", async () => {
    await upload(grey, fixtureFiles["grey28.onnx"]!);
    const call = worker();
    expect((await call("/v2/models/grey28/infer", infer(fp32Ref))).status).toBe(200);
    const broken = { ...grey, version: "2", file: "grey28-v2.onnx", sha256: "0".repeat(64) };
    await upload(broken, fixtureFiles["grey28.onnx"]!);
    await call("/v2/health/live");
    expect(errors).toContainEqual(
      expect.stringMatching(/not serving the new manifest MODELS\/manifest\.json .*grey28-v2\.onnx has sha256/),
    );
    const still = await call("/v2/models/grey28/infer", infer(fp32Ref));
    expect(still.status).toBe(200);
    expect(still.headers.get("X-Model-Version")).toBe(grey.version);
  });

  it("takes the A/B routing's teacher from the manifest served now: a new teacher needs no redeploy", async () => {
    await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
    const teacher = (name: string): ModelEntry => ({ ...grey, name, role: "teacher", file: `${name}.onnx` });
    await upload(grey, fixtureFiles["grey28.onnx"]!, { ...manifestOf(grey), models: [grey, teacher("teacher-a")] });
    const call = worker({ TEACHER_URL: "http://127.0.0.1:9" }, { DB: env.DB });
    const teacherOf = async () =>
      ((await (await call("/v1/config", {}, true)).json()) as { teacher: { model: string | null } }).teacher.model;
    expect(await teacherOf()).toBe("teacher-a");
    await upload(grey, fixtureFiles["grey28.onnx"]!, { ...manifestOf(grey), models: [grey, teacher("teacher-b")] });
    // The request that starts the check still reads the old manifest; the next one the new.
    await call("/v2/health/live");
    expect(await teacherOf()).toBe("teacher-b");
  });

  it("checks at most every MODELS_CHECK_SECONDS", async () => {
    await upload(grey, fixtureFiles["grey28.onnx"]!);
    const call = worker({ MODELS_CHECK_SECONDS: "3600" });
    expect((await call("/v2/models/grey28/infer", infer(fp32Ref))).headers.get("X-Model-Version")).toBe(grey.version);
    await upload({ ...int8, name: "grey28", version: "2", file: "grey28-v2.onnx" }, fixtureFiles["grey28-int8.onnx"]!);
    for (let i = 0; i < 3; i++)
      expect((await call("/v2/models/grey28/infer", infer(fp32Ref))).headers.get("X-Model-Version")).toBe(grey.version);
  });
});

describe("R2 settings", () => {
  it("MODELS_CHECK_SECONDS and MODELS_PREFIX over the defaults; a bad value is a configuration error", () => {
    expect(r2OptionsFromEnv({})).toEqual(DEFAULT_R2_MODELS);
    expect(r2OptionsFromEnv({ MODELS_CHECK_SECONDS: "5", MODELS_PREFIX: "models/" })).toEqual({
      ...DEFAULT_R2_MODELS,
      checkSeconds: 5,
      prefix: "models/",
    });
    expect(() => r2OptionsFromEnv({ MODELS_CHECK_SECONDS: "soon" })).toThrow(
      'MODELS_CHECK_SECONDS must be a whole number of seconds, got "soon"',
    );
  });
});
