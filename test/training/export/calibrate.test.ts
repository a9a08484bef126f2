// training/export/calibrate.ts: activation ranges measured by running the fp32 model in onnxruntime.
import { describe, expect, it } from "vitest";
import type { Images } from "../../../training/data/layout.ts";
import { calibrate } from "../../../training/export/calibrate.ts";
import { decodeModel, encodeModel, node, valueInfo } from "../../../training/onnx/proto.ts";

// input [N, 1, 2, 2] -> Relu -> "r"
const model = decodeModel(
  encodeModel({
    opset: 13,
    nodes: [node("Relu", ["input"], ["r"])],
    inputs: [valueInfo("input", ["N", 1, 2, 2])],
    outputs: [valueInfo("r", ["N", 1, 2, 2])],
  }),
);

/** Four 2x2 grey images: 15 values spread over [-1, 1] and one outlier, 100. */
const values = [...Array.from({ length: 15 }, (_, i) => -1 + (2 * i) / 14), 100];
const images: Images = { data: Float32Array.from(values), count: 4, height: 2, width: 2, channels: 1 };

describe("calibrate", () => {
  it("minmax: the smallest and largest value of each tensor over all images", async () => {
    const ranges = await calibrate(model, ["input", "r"], images, { method: "minmax" });
    expect(ranges.get("input")).toEqual({ min: -1, max: 100 });
    expect(ranges.get("r")).toEqual({ min: 0, max: 100 });
  });

  it("percentile: clips the rarest values at both ends, to within a histogram bin", async () => {
    // 90%: each tail may drop 1.6 of the 16 values, so the outlier and the lowest value go.
    const ranges = await calibrate(model, ["input", "r"], images, { method: "percentile", percentile: 90 });
    const bin = 101 / 2048;
    expect(ranges.get("input")!.max).toBeGreaterThanOrEqual(1);
    expect(ranges.get("input")!.max).toBeLessThanOrEqual(1 + bin);
    expect(ranges.get("input")!.min).toBeGreaterThanOrEqual(values[1]! - bin);
    expect(ranges.get("input")!.min).toBeLessThanOrEqual(values[1]!);
    expect(ranges.get("r")!.min).toBe(0); // a ReLU output keeps its lower end
    const all = await calibrate(model, ["input"], images, { method: "percentile", percentile: 100 });
    expect(all.get("input")).toEqual({ min: -1, max: 100 });
  });

  it("refuses no images, a percentile outside (50, 100], and tensors that are not finite", async () => {
    await expect(calibrate(model, ["input"], { ...images, count: 0 }, { method: "minmax" })).rejects.toThrow(
      /at least one image/,
    );
    await expect(calibrate(model, ["input"], images, { method: "percentile", percentile: 40 })).rejects.toThrow(
      /percentile must be in \(50, 100\], got 40/,
    );
    const nan = { ...images, data: Float32Array.from(values, (v, i) => (i === 3 ? Number.NaN : v)) };
    await expect(calibrate(model, ["r"], nan, { method: "minmax" })).rejects.toThrow(
      /tensor "r" has non-finite values/,
    );
  });
});
