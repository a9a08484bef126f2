// scripts/bundle-models.ts: the module through which the Worker gets models/.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import { bundleModels, bundleSource } from "../../scripts/bundle-models.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function modelsDir(): string {
  const d = mkdtempSync(join(tmpdir(), "nd-bundle-"));
  dirs.push(d);
  return d;
}

function entry(name: string, role: ModelEntry["role"]): ModelEntry {
  return {
    name,
    version: "1",
    role,
    architecture: "narrow-deep",
    file: `${name}.onnx`,
    sha256: "a".repeat(64),
    bytes: 4,
    input: { name: "input", shape: [-1, 1, 28, 28], datatype: "FP32", layout: "NCHW" },
    outputs: [
      { name: "logits", shape: [-1, 10], datatype: "FP32" },
      { name: "probabilities", shape: [-1, 10], datatype: "FP32" },
    ],
    normalization: { mean: [0.286], std: [0.353] },
    labels: Array.from({ length: 10 }, (_, i) => `c${i}`),
    metrics: { params: 1, macs: 1 },
  };
}

function write(dir: string, manifest: Manifest, files: string[]): void {
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  for (const f of files) writeFileSync(join(dir, f), "onnx");
}

describe("bundleModels", () => {
  it("imports the manifest and the students' files, not the teachers'", () => {
    const dir = modelsDir();
    write(dir, { schemaVersion: 1, defaultStudent: "narrow-deep", models: [entry("narrow-deep", "student"), entry("wide", "student"), entry("teacher", "teacher")] }, ["narrow-deep.onnx", "wide.onnx"]);
    bundleModels(dir);
    const source = readFileSync(join(dir, "bundle.ts"), "utf8");
    expect(source).toContain('import manifest from "./manifest.json";');
    expect(source).toContain('import file0 from "./narrow-deep.onnx";');
    expect(source).toContain('"wide.onnx": file1,');
    expect(source).not.toContain("teacher.onnx");
  });

  it("gives an empty registry without a manifest", () => {
    const source = bundleSource(modelsDir());
    expect(source).toContain('export const manifestJson: unknown = {"schemaVersion":1,"defaultStudent":"none","models":[]};');
    expect(source).toContain("export const modelFiles: Record<string, ArrayBuffer> = {};");
  });

  it("refuses a manifest naming a missing file, or an invalid one", () => {
    const dir = modelsDir();
    write(dir, { schemaVersion: 1, defaultStudent: "narrow-deep", models: [entry("narrow-deep", "student")] }, []);
    expect(() => bundleModels(dir)).toThrow(/narrow-deep's file .*narrow-deep.onnx does not exist/);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ schemaVersion: 2 }));
    expect(() => bundleModels(dir)).toThrow(/schemaVersion/);
  });

  it("leaves a current bundle untouched", () => {
    const dir = modelsDir();
    write(dir, { schemaVersion: 1, defaultStudent: "narrow-deep", models: [entry("narrow-deep", "student")] }, ["narrow-deep.onnx"]);
    bundleModels(dir);
    const before = statSync(join(dir, "bundle.ts")).mtimeMs;
    bundleModels(dir);
    expect(statSync(join(dir, "bundle.ts")).mtimeMs).toBe(before);
  });
});
