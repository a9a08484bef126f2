// The acceptance rule of an export: max |logit difference| <= 1e-4 and the same top-1 everywhere.
import { describe, expect, it } from "vitest";
import { nhwcToNchw } from "../../../training/data/layout.ts";
import { ExportVerificationError, assertParity, compareLogits } from "../../../training/export/verify.ts";

describe("compareLogits / assertParity", () => {
  const a = Float32Array.from([1, 2, 3, 9, 8, 7]); // two images, three classes: top-1 = 2, 0
  it("accepts differences up to 1e-4 with the same top-1 on every image", () => {
    const b = a.map((v, i) => v + (i === 4 ? 1e-4 : -5e-5));
    const r = compareLogits(a, b, 3);
    expect(r.samples).toBe(2);
    expect(r.top1Agreement).toBe(1);
    expect(r.maxAbsLogitDiff).toBeCloseTo(1e-4, 6);
    expect(() => assertParity("m", { ...r, maxAbsLogitDiff: 1e-4 })).not.toThrow();
  });

  it("refuses a larger difference, a changed top-1, NaN logits, and no images, saying which", () => {
    const far = compareLogits(
      a,
      a.map((v, i) => (i === 0 ? v + 2e-4 : v)),
      3,
    );
    expect(() => assertParity("m", far)).toThrow(ExportVerificationError);
    expect(() => assertParity("m", far)).toThrow(
      "m: ONNX export does not match tfjs: max |logit difference| 2.000e-4 exceeds 1e-4",
    );
    const flipped = compareLogits(a, Float32Array.from([1, 2, 3, 7, 8, 9]), 3);
    expect(flipped.top1Agreement).toBe(0.5);
    expect(() => assertParity("m", flipped)).toThrow("top-1 agrees on 50.00% of 2 images, not 100%");
    const nan = compareLogits(
      a,
      a.map((v, i) => (i === 1 ? Number.NaN : v)),
      3,
    );
    expect(nan.maxAbsLogitDiff).toBe(Infinity);
    expect(() => assertParity("m", nan)).toThrow(/Infinity exceeds/);
    expect(() => assertParity("m", { maxAbsLogitDiff: 0, top1Agreement: 1, samples: 0 })).toThrow(
      "m: no images to verify the export with",
    );
  });

  it("transposes NHWC images to NCHW", () => {
    // one 1x2 image with 3 channels: pixels (r,g,b) = (1,2,3), (4,5,6)
    const data = Float32Array.from([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    expect([...nhwcToNchw({ data, count: 2, height: 1, width: 2, channels: 3 }, 1, 1)]).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
