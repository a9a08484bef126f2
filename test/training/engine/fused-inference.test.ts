// Inference with batch norm (and ReLU) folded into the convolutions equals the layer-by-layer pass,
// on wasm (convolutions on XNNPACK and on native onnxruntime) and on cpu, with non-trivial moving
// statistics.
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { nativeGraphCount, nchwcBlock, useNativeConvolutions } from "../../../training/engine/native-conv.ts";
import { createModel, disposeModel, forward } from "../../../training/model/forward.ts";
import { architecture } from "../../../training/model/resnet.ts";
import { onBothBackends, randomValues, relativeError } from "./gradcheck.ts";

/** Width scales whose channel counts fill (or, for wide, are padded to) whole NCHWc blocks. */
const TEST_WIDTH = { unmodified: 2 / 3, "narrow-deep": 0.5, wide: 5 / 6 } as const;

describe("fused inference (BN folded into convolutions)", () => {
  it.each([
    ["unmodified", false],
    ["narrow-deep", false],
    ["wide", false],
    ["unmodified", true],
    ["narrow-deep", true],
    ["wide", true], // 15, 30 and 60 channels: NCHWc with padded input, filter and bias
  ] as const)("gives the unfused logits for %s, on wasm (native convolutions: %s) and cpu", async (name, native) => {
    useNativeConvolutions(native);
    const graphs = nativeGraphCount();
    const graph = architecture(name, { height: 12, width: 12, channels: 3 }, 5, TEST_WIDTH[name]);
    const { cpu, wasm } = await onBothBackends(() => {
      const model = createModel(graph, 3);
      // Moving statistics away from their initial 0/1, and BN scales away from 1.
      for (const [k, v] of model.params) {
        if (k.endsWith("movingMean") || k.endsWith("beta"))
          v.assign(tf.tensor(randomValues(v.size, k.length), v.shape));
        if (k.endsWith("movingVariance") || k.endsWith("gamma"))
          v.assign(
            tf
              .tensor(randomValues(v.size, k.length + 1), v.shape)
              .abs()
              .add(0.5),
          );
      }
      const images = tf.tensor4d(randomValues(4 * 12 * 12 * 3, 5), [4, 12, 12, 3]);
      const out = [
        forward(model, images, { training: false }),
        forward(model, images, { training: false, fuse: false }),
      ];
      disposeModel(model);
      return out;
    });
    expect(nativeGraphCount() > graphs).toBe(native);
    // The widths give 4, 8 and 16 channels (narrow-deep), 8, 16 and 32 (unmodified): whole NCHWc
    // blocks (8 or 16), whose graphs the first model here builds and the second reuses.
    if (native && nchwcBlock() > 0) expect(nativeGraphCount("blocked")).toBeGreaterThan(0);
    expect(relativeError(cpu[0]!, cpu[1]!)).toBeLessThan(1e-5);
    expect(relativeError(wasm[0]!, wasm[1]!)).toBeLessThan(1e-5);
    expect(relativeError(wasm[0]!, cpu[1]!)).toBeLessThan(1e-5);
  });
});
