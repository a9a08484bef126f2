import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { onBothBackends, randomValues, relativeError } from "./gradcheck.ts";

// [batch, height, width, inChannels, outChannels, kernel, stride], padding (kernel - 1) / 2 as forward.ts.
const cases: [number, number, number, number, number, number, number][] = [
  [2, 7, 7, 3, 4, 3, 1],
  [2, 8, 8, 3, 5, 3, 2],
  [3, 7, 7, 4, 6, 3, 2], // odd size with stride 2: last row used
  [2, 8, 8, 3, 4, 1, 2], // 1x1 stride 2: last row of x never read
  [2, 7, 6, 3, 4, 1, 2],
  [2, 5, 6, 2, 3, 1, 1],
  [4, 9, 9, 1, 8, 3, 1], // one input channel, as the stem
  [2, 10, 9, 3, 4, 5, 2], // kernel 5: two taps per phase
  [2, 9, 8, 2, 3, 1, 3], // 1x1 stride 3: most phases of dx get no tap (zeros)
];

describe("wasm convolution gradient kernels", () => {
  it.each(cases)("match cpu for x [%i,%i,%i,%i], %i filters of size %i, stride %i", async (b, h, w, ci, co, k, s) => {
    const { cpu, wasm } = await onBothBackends(() => {
      const x = tf.tensor4d(randomValues(b * h * w * ci, 1), [b, h, w, ci]);
      const filter = tf.tensor4d(randomValues(k * k * ci * co, 2), [k, k, ci, co]);
      const y = tf.conv2d(x, filter, s, (k - 1) / 2);
      const r = tf.tensor(randomValues(y.size, 3), y.shape); // a random upstream gradient
      const [dx, dw] = tf.grads((a, f) => tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, s, (k - 1) / 2).mul(r).sum())([x, filter]);
      return [y, dx!, dw!];
    });
    for (let i = 0; i < 3; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
  });

  it("gives 'same' and 'valid' padding the cpu backend's gradients too", async () => {
    for (const [pad, stride] of [["same", 2], ["valid", 2], ["valid", 3], ["same", 3]] as const) {
      const { cpu, wasm } = await onBothBackends(() => {
        const x = tf.tensor4d(randomValues(2 * 9 * 8 * 3, 4), [2, 9, 8, 3]);
        const filter = tf.tensor4d(randomValues(3 * 3 * 3 * 5, 5), [3, 3, 3, 5]);
        const [dx, dw] = tf.grads((a, f) => tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, stride, pad).square().sum())([x, filter]);
        return [dx!, dw!];
      });
      for (let i = 0; i < 2; i++) expect(relativeError(wasm[i]!, cpu[i]!)).toBeLessThan(1e-5);
    }
  });
});
