// Mean average precision and precision at 1 against values worked out by hand.
import { describe, expect, it } from "vitest";
import { averagePrecision, meanAveragePrecision, precisionAtOne } from "../../../training/train/map.ts";

describe("mean average precision", () => {
  it("averages the precision at the rank of each image where the class is present", () => {
    // Ranked 0.9 (yes), 0.8 (no), 0.7 (yes), 0.6 (no): precisions 1/1 and 2/3 -> AP 5/6.
    expect(averagePrecision([0.7, 0.9, 0.6, 0.8], [1, 1, 0, 0])).toBeCloseTo(5 / 6, 10);
    expect(averagePrecision([0.1, 0.2], [1, 1])).toBe(1);
    // The only positive ranked last of three: 1/3.
    expect(averagePrecision([0.1, 0.5, 0.9], [1, 0, 0])).toBeCloseTo(1 / 3, 10);
    expect(averagePrecision([0.1, 0.5], [0, 0])).toBeNaN();
  });

  it("means over the classes present in the set, and precision at 1 counts a top class that is present", () => {
    // 3 images x 3 classes; class 2 is never present and does not count.
    const scores = [0.9, 0.1, 0.5, 0.2, 0.8, 0.3, 0.6, 0.7, 0.0];
    const targets = [1, 0, 0, 0, 1, 0, 1, 1, 0];
    // Class 0: scores 0.9 (yes), 0.2 (no), 0.6 (yes) -> ranks 1, 2 -> AP 1. Class 1: 0.1 (no), 0.8
    // (yes), 0.7 (yes) -> ranks 1, 2 -> AP 1. Perfect, so mAP 1.
    const { map, perClass } = meanAveragePrecision(scores, targets, 3);
    expect(map).toBe(1);
    expect(perClass[2]).toBeNaN();
    // Image 3's top class (1, 0.7) is present; all three are right.
    expect(precisionAtOne(scores, targets, 3)).toBe(1);
    expect(precisionAtOne(scores, [0, 1, 0, 0, 1, 0, 1, 1, 0], 3)).toBeCloseTo(2 / 3, 10);
    expect(meanAveragePrecision(scores, [0, 1, 0, 1, 0, 0, 1, 0, 0], 3).map).toBeCloseTo(
      ((1 / 2 + 2 / 3) / 2 + 1 / 3) / 2,
      10,
    );
  });
});
