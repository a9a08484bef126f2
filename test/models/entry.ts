// A valid manifest entry for tests of the manifest and of what reads it.
import type { ModelEntry } from "../../models/schema.ts";

export function entry(name: string, role: ModelEntry["role"]): ModelEntry {
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
