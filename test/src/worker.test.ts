/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The Worker entry as deployed: the models bundled from models/ (trained ones once they exist),
// settings from wrangler.toml's [vars], and a clear 500 when a variable or a secret is unusable.
import { SELF, createExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { manifestJson, modelFiles } from "../../models/bundle.ts";
import { parseManifest } from "../../models/schema.ts";
import pkg from "../../package.json";
import worker from "../../src/index.ts";
import { optionsFromEnv } from "../../src/config/worker-config.ts";
import { createWorker } from "../../src/worker.ts";

const students = parseManifest(manifestJson).models.filter((m) => m.role === "student");

describe("options from the environment", () => {
  it("parses limits and CORS origins, keeping defaults for unset ones", () => {
    expect(optionsFromEnv({ MAX_BATCH: "8", CORS_ORIGINS: "https://a.example, https://b.example" })).toEqual({
      limits: { maxBatch: 8 },
      corsOrigins: ["https://a.example", "https://b.example"],
    });
    expect(optionsFromEnv({})).toEqual({ limits: {}, corsOrigins: [] });
  });

  it("answers 500 for a malformed variable, naming it to the admin only, without caching the failure", async () => {
    const res = await worker.fetch!(new Request("http://x/v2"), { MAX_BODY_BYTES: "4MB" }, createExecutionContext());
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "server misconfigured" });
    const token = "admin-token-for-the-worker-test-0123456789";
    const admin = await worker.fetch!(
      new Request("http://x/v2", { headers: { Authorization: `Bearer ${token}` } }),
      { MAX_BODY_BYTES: "4MB", ADMIN_TOKEN: token },
      createExecutionContext(),
    );
    expect(await admin.json()).toEqual({
      error: "server misconfigured",
      detail: 'MAX_BODY_BYTES must be a positive integer, got "4MB"',
    });
    const fixed = await worker.fetch!(
      new Request("http://x/v2"),
      { MAX_BODY_BYTES: "4194304" },
      createExecutionContext(),
    );
    expect(fixed.status).toBe(200);
  });
});

describe("the Worker's secrets", () => {
  it("refuses to start with an ADMIN_TOKEN or CLIENT_ID_SECRET under 32 characters, saying so to the admin and in the log", async () => {
    // A Worker of its own: one that started is not started again.
    const worker = createWorker(manifestJson, modelFiles);
    const errors: string[] = [];
    const spy = vi
      .spyOn(console, "error")
      .mockImplementation((...args: unknown[]) => void errors.push(args.map(String).join(" ")));
    try {
      const short = "short-admin-token-0123456789";
      const asShortAdmin = { headers: { Authorization: `Bearer ${short}` } };
      const res = await worker.fetch!(
        new Request("http://x/v2", asShortAdmin),
        { ADMIN_TOKEN: short },
        createExecutionContext(),
      );
      expect(res.status).toBe(500);
      const detail =
        "ADMIN_TOKEN is 28 characters long; it must have at least 32 (e.g. `openssl rand -base64 32`), so that it cannot be guessed";
      expect(await res.json()).toEqual({ error: "server misconfigured", detail });
      expect(errors.join("\n")).toContain(detail);
      const anonymous = await worker.fetch!(
        new Request("http://x/v2/health/live"),
        { ADMIN_TOKEN: short, CLIENT_ID_SECRET: "short" },
        createExecutionContext(),
      );
      expect(anonymous.status).toBe(500);
      expect(await anonymous.json()).toEqual({ error: "server misconfigured" });
      expect(errors.join("\n")).toContain("CLIENT_ID_SECRET is 5 characters long");
      const long = await worker.fetch!(
        new Request("http://x/v2/health/live"),
        { ADMIN_TOKEN: `${short}-long-enough` },
        createExecutionContext(),
      );
      expect(long.status).toBe(200);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("the deployed Worker", () => {
  it("describes itself", async () => {
    const res = await SELF.fetch("http://x/v2");
    expect(await res.json()).toEqual({
      name: pkg.name,
      version: pkg.version,
      extensions: ["classification", "binary_tensor_data", "model_configuration"],
    });
    expect((await SELF.fetch("http://x/v2/health/ready")).status).toBe(200);
  });

  it.runIf(students.length === 0)("without bundled models, says so", async () => {
    const res = await SELF.fetch("http://x/v1/classify", { method: "POST", body: new Uint8Array(10) });
    expect(res.status).toBe(404);
  });

  for (const m of students) {
    it(`serves the bundled student ${m.name}`, async () => {
      const meta = await SELF.fetch(`http://x/v2/models/${m.name}`);
      expect(meta.status).toBe(200);
      const dims = [2, ...m.input.shape.slice(1)];
      const size = dims.reduce((a, b) => a * b, 1);
      const res = await SELF.fetch(`http://x/v2/models/${m.name}/infer`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          inputs: [{ name: m.input.name, shape: dims, datatype: "FP32", data: new Array(size).fill(0.5) }],
        }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      const probs = body.outputs.find((o) => o.name === "probabilities")!;
      expect(probs.shape).toEqual([2, m.labels.length]);
      expect(probs.data.slice(0, m.labels.length).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    });
  }
});
