// The Worker's engine outside the Worker (bench/wasm-reference.ts): a child Node process runs the
// model in onnxruntime-web with and without explicit WebAssembly bounds checks, and reports timings.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { wasmReference } from "../../bench/wasm-reference.ts";
import { buildFixtureModels } from "../src/setup/fixtures.ts";

describe("wasmReference", () => {
  it("times a model in onnxruntime-web in a child process, with and without explicit bounds checks", async () => {
    const { manifest, files } = await buildFixtureModels();
    const model = manifest.models.find((m) => m.role === "student" && !m.quantization)!;
    const file = join(mkdtempSync(join(tmpdir(), "nd-wasm-ref-")), model.file);
    writeFileSync(file, files.get(model.file)!);
    for (const checked of [false, true]) {
      const s = wasmReference(file, model.input, 5, checked);
      expect(s.n).toBe(5);
      expect(s.mean).toBeGreaterThan(0);
      expect(s.median).toBeLessThanOrEqual(s.p99);
    }
    expect(() => wasmReference(join(file, "missing.onnx"), model.input, 5, false)).toThrow();
  }, 60_000);
});
