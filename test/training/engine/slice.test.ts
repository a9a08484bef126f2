// The wasm Slice kernel (training/engine/slice.ts) against the cpu backend: runs of whole rows,
// partial inner dimensions, whole tensors, int32, and the pad gradient it exists for.
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { onBothBackends, randomValues } from "./gradcheck.ts";

const CASES: [number[], number[], number[]][] = [
  [
    [4, 10, 10, 3],
    [0, 1, 1, 0],
    [4, 8, 8, 3],
  ], // the pad gradient of a stride-2 convolution
  [
    [2, 5, 6, 4],
    [1, 2, 0, 1],
    [1, 2, 6, 2],
  ], // partial innermost dimension
  [
    [3, 7],
    [1, 2],
    [2, 5],
  ],
  [[12], [3], [7]],
  [
    [2, 3, 4],
    [0, 0, 0],
    [2, 3, 4],
  ], // the whole tensor
  [
    [2, 3, 4],
    [1, 0, 0],
    [1, 3, 4],
  ], // one contiguous block
  [
    [2, 3, 4],
    [0, 1, 0],
    [-1, 2, -1],
  ], // -1: to the end
  [
    [3, 4, 5],
    [0, 0, 2],
    [3, 4, 0],
  ], // empty
];

describe("Slice on wasm", () => {
  it.each(CASES)("x %j, begin %j, size %j: equals cpu exactly", async (shape, begin, size) => {
    const { cpu, wasm } = await onBothBackends(() => {
      const x = tf.tensor(randomValues(tf.util.sizeFromShape(shape), 3), shape);
      return [tf.slice(x, begin, size), tf.slice(x.toInt(), begin, size).toFloat()];
    });
    expect(Array.from(wasm[0]!)).toEqual(Array.from(cpu[0]!));
    expect(Array.from(wasm[1]!)).toEqual(Array.from(cpu[1]!));
  });

  it("gives the pad's gradient", async () => {
    const { cpu, wasm } = await onBothBackends(() => {
      const x = tf.tensor(randomValues(2 * 6 * 6 * 3, 4), [2, 6, 6, 3]);
      const r = tf.tensor(randomValues(2 * 8 * 8 * 3, 5), [2, 8, 8, 3]);
      return [
        tf.grad((a) =>
          tf
            .pad(a, [
              [0, 0],
              [1, 1],
              [1, 1],
              [0, 0],
            ])
            .mul(r)
            .sum(),
        )(x),
      ];
    });
    expect(Array.from(wasm[0]!)).toEqual(Array.from(cpu[0]!));
  });
});
