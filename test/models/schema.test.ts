// models/schema.ts: the served-students list and the quantization block of an int8 variant, and
// that exports keep the list.
import { describe, expect, it } from "vitest";
import { type Manifest, parseManifest } from "../../models/schema.ts";
import { mergeEntries } from "../../training/export/entry.ts";
import { entry } from "./entry.ts";

const quantization = {
  twin: "wide",
  twinSha256: "b".repeat(64),
  format: "qdq",
  weights: "int8, symmetric, per output channel",
  activations: "uint8, per tensor",
  bias: "int32",
  calibration: { dataset: "fashion-mnist", split: "train", samples: 1000, method: "minmax" },
  relativeLogitError: 0.012,
  tolerance: { maxRelativeLogitError: 0.1 },
  runtime: "onnxruntime-node, graph optimization basic",
};

const manifest = (extra: Partial<Manifest> = {}): Manifest => ({
  schemaVersion: 1,
  defaultStudent: "wide",
  models: [entry("teacher", "teacher"), entry("wide", "student"), { ...entry("wide-int8", "student"), quantization }],
  ...extra,
});

describe("serve", () => {
  it("is optional, and lists students of the manifest", () => {
    expect(parseManifest(manifest()).serve).toBeUndefined();
    expect(parseManifest(manifest({ serve: ["wide-int8"] })).serve).toEqual(["wide-int8"]);
  });

  it("refuses a name that is not a model, a teacher, or something not a list", () => {
    expect(() => parseManifest(manifest({ serve: ["wide-int4"] }))).toThrow(
      'manifest serve[0]: "wide-int4" is not a model in models',
    );
    expect(() => parseManifest(manifest({ serve: ["wide", "teacher"] }))).toThrow(
      'manifest serve[1]: "teacher" is a teacher; the Worker serves students only',
    );
    expect(() => parseManifest({ ...manifest(), serve: "wide-int8" })).toThrow(
      "manifest serve: must be an array of student names",
    );
  });

  it("survives an export's merge", () => {
    const merged = mergeEntries(parseManifest(manifest({ serve: ["wide-int8"] })), [
      { ...entry("wide", "student"), version: "2" },
    ]);
    expect(merged.serve).toEqual(["wide-int8"]);
    expect(parseManifest(JSON.parse(JSON.stringify(merged))).serve).toEqual(["wide-int8"]);
  });
});

describe("quantization", () => {
  it("round-trips, and names a missing or malformed field", () => {
    expect(parseManifest(manifest()).models[2]!.quantization).toEqual(quantization);
    const bad = (q: object) =>
      manifest({
        models: [
          entry("wide", "student"),
          { ...entry("wide-int8", "student"), quantization: q as typeof quantization },
        ],
      });
    expect(() => parseManifest(bad({ ...quantization, twinSha256: "xyz" }))).toThrow(
      "manifest models[1].quantization.twinSha256: must be 64 lowercase hex digits",
    );
    expect(() =>
      parseManifest(bad({ ...quantization, calibration: { ...quantization.calibration, samples: "many" } })),
    ).toThrow("manifest models[1].quantization.calibration.samples: must be a finite number");
    expect(() => parseManifest(bad({ ...quantization, tolerance: undefined }))).toThrow(
      "manifest models[1].quantization.tolerance: must be an object",
    );
  });
});
