// The Triton model repository the exporter writes beside the manifest: an export of a teacher and a
// student into a temporary models folder gives <models>/triton/teacher/{config.pbtxt, 1/model.onnx, labels.txt}; the
// config parses as protobuf text format (protobufjs's parser, not our writer) under a ModelConfig
// schema written from Triton's model-configuration docs, and its inputs and outputs are those of the
// ONNX file itself (read by onnxruntime-node).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import protobuf from "protobufjs";
import textformat from "protobufjs/ext/textformat.js";
import { beforeAll, describe, expect, it } from "vitest";
import { type Manifest, type ModelEntry, parseManifest } from "../../../models/schema.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { exportRun } from "../../../training/export/index.ts";
import { TRITON_DIR, tritonConfig, writeTritonRepository } from "../../../training/export/triton.ts";
import { fixtureRunDir } from "./fixtures.ts";

/** The part of Triton's ModelConfig (inference.ModelConfig) that the exporter writes, with its documented names. */
const MODEL_CONFIG = protobuf
  .parse(`
syntax = "proto3";
package inference;
enum DataType { TYPE_INVALID = 0; TYPE_BOOL = 1; TYPE_UINT8 = 2; TYPE_UINT16 = 3; TYPE_UINT32 = 4; TYPE_UINT64 = 5; TYPE_INT8 = 6;
  TYPE_INT16 = 7; TYPE_INT32 = 8; TYPE_INT64 = 9; TYPE_FP16 = 10; TYPE_FP32 = 11; TYPE_FP64 = 12; TYPE_STRING = 13; TYPE_BF16 = 14; }
message ModelInput {
  enum Format { FORMAT_NONE = 0; FORMAT_NHWC = 1; FORMAT_NCHW = 2; }
  string name = 1; DataType data_type = 2; Format format = 3; repeated int64 dims = 4;
}
message ModelOutput { string name = 1; DataType data_type = 2; repeated int64 dims = 3; string label_filename = 4; }
message ModelDynamicBatching { repeated int32 preferred_batch_size = 1; uint64 max_queue_delay_microseconds = 2; }
message ModelConfig {
  string name = 1; string platform = 2; int32 max_batch_size = 4;
  repeated ModelInput input = 5; repeated ModelOutput output = 6; ModelDynamicBatching dynamic_batching = 11;
}`)
  .root.lookupType("inference.ModelConfig");

interface ParsedConfig {
  name: string;
  platform: string;
  maxBatchSize?: number;
  input: { name: string; dataType: string; format?: string; dims: number[] }[];
  output: { name: string; dataType: string; dims: number[]; labelFilename?: string }[];
  dynamicBatching?: { maxQueueDelayMicroseconds?: number };
}

const parse = (text: string) =>
  MODEL_CONFIG.toObject(textformat.fromText(MODEL_CONFIG, text), { enums: String, longs: Number }) as ParsedConfig;
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

beforeAll(async () => {
  await initBackend("wasm", { log: () => {} });
});

describe("the exporter's Triton repository", () => {
  let models: string;
  let teacher: ModelEntry;

  beforeAll(async () => {
    const run = fixtureRunDir([{ architecture: "teacher", role: "teacher" }, { architecture: "narrow-deep" }]);
    models = mkdtempSync(join(tmpdir(), "models-"));
    await exportRun(run, { log: () => {}, accuracySamples: 256, int8: false, modelsDir: models });
    teacher = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8"))).models.find(
      (m) => m.role === "teacher",
    )!;
  });

  it("lays out the teacher as Triton expects: config.pbtxt beside 1/model.onnx, with its labels", () => {
    const dir = join(models, TRITON_DIR, teacher.name);
    expect(readdirSync(join(models, TRITON_DIR))).toEqual([teacher.name]);
    expect(readdirSync(dir).sort()).toEqual(["1", "config.pbtxt", "labels.txt"]);
    expect(readdirSync(join(dir, "1"))).toEqual(["model.onnx"]);
    expect(sha256(readFileSync(join(dir, "1", "model.onnx")))).toBe(teacher.sha256);
    expect(readFileSync(join(dir, "labels.txt"), "utf8").trimEnd().split("\n")).toEqual(teacher.labels);
  });

  it("writes a config that parses as Triton's ModelConfig and describes the ONNX file's own inputs and outputs, batched", async () => {
    const config = parse(readFileSync(join(models, TRITON_DIR, teacher.name, "config.pbtxt"), "utf8"));
    expect(config).toMatchObject({
      name: teacher.name,
      platform: "onnxruntime_onnx",
      maxBatchSize: 32,
      dynamicBatching: { maxQueueDelayMicroseconds: 2000 },
    });
    expect(config.input).toEqual([{ name: "input", dataType: "TYPE_FP32", format: "FORMAT_NCHW", dims: [1, 28, 28] }]);
    expect(config.output).toEqual([
      { name: "logits", dataType: "TYPE_FP32", dims: [10], labelFilename: "labels.txt" },
      { name: "probabilities", dataType: "TYPE_FP32", dims: [10], labelFilename: "labels.txt" },
    ]);
    // With max_batch_size > 0 Triton prepends the batch dimension: the result must be the file's own shapes.
    const session = await ort.InferenceSession.create(join(models, TRITON_DIR, teacher.name, "1", "model.onnx"));
    try {
      const shapes = (meta: readonly ort.InferenceSession.ValueMetadata[]) =>
        meta.map((m) => [m.name, m.isTensor ? m.shape.map((d) => (typeof d === "number" ? d : -1)) : []]);
      expect(shapes(session.inputMetadata)).toEqual(config.input.map((i) => [i.name, [-1, ...i.dims]]));
      expect(shapes(session.outputMetadata)).toEqual(config.output.map((o) => [o.name, [-1, ...o.dims]]));
    } finally {
      await session.release();
    }
  });

  it("is rewritten whole: a model that is no longer a teacher leaves it", () => {
    const stale = join(models, TRITON_DIR, "old-teacher", "1");
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, "model.onnx"), "x");
    const manifest = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8")));
    expect(writeTritonRepository(models, manifest)).toEqual([join(models, TRITON_DIR, teacher.name)]);
    expect(readdirSync(join(models, TRITON_DIR))).toEqual([teacher.name]);
  });
});

describe("tritonConfig", () => {
  const entry = (shape: number[]): ModelEntry =>
    ({
      name: "fixed",
      version: "v1",
      role: "teacher",
      file: "fixed.onnx",
      sha256: "0".repeat(64),
      input: { name: "x", shape, datatype: "FP32", layout: "NHWC" },
      outputs: [{ name: "probabilities", shape: [shape[0]!, 3], datatype: "FP32" }],
      labels: ["a", "b", "c"],
    }) as unknown as ModelEntry;

  it("takes the batching settings", () => {
    const c = parse(tritonConfig(entry([-1, 8, 8, 3]), { maxBatch: 8, queueDelayMicroseconds: 500 }));
    expect(c).toMatchObject({ maxBatchSize: 8, dynamicBatching: { maxQueueDelayMicroseconds: 500 } });
    expect(c.input[0]).toEqual({ name: "x", dataType: "TYPE_FP32", format: "FORMAT_NHWC", dims: [8, 8, 3] });
  });

  it("does not batch a model whose batch dimension is fixed: max_batch_size 0, full shapes, no dynamic batching", () => {
    const c = parse(tritonConfig(entry([1, 8, 8, 3])));
    expect(c.maxBatchSize ?? 0).toBe(0);
    expect(c.dynamicBatching).toBeUndefined();
    expect(c.input[0]!.dims).toEqual([1, 8, 8, 3]);
    expect(c.output[0]!.dims).toEqual([1, 3]);
  });

  it("refuses settings Triton would refuse", () => {
    expect(() => tritonConfig(entry([-1, 8, 8, 3]), { maxBatch: 0 })).toThrow(
      /max batch must be a positive integer, got 0/,
    );
    expect(() => tritonConfig(entry([-1, 8, 8, 3]), { queueDelayMicroseconds: -1 })).toThrow(
      /queue delay must be a non-negative integer/,
    );
  });

  it("writes nothing for a manifest without a teacher", () => {
    const dir = mkdtempSync(join(tmpdir(), "models-"));
    const manifest: Manifest = { schemaVersion: 1, defaultStudent: "s", models: [] };
    expect(writeTritonRepository(dir, manifest)).toEqual([]);
    expect(existsSync(join(dir, TRITON_DIR))).toBe(false);
  });
});
