// Attention transfer: the attention map and the loss against hand-computed values, its invariance
// to the scale of the features, and the stage outputs it compares on the project's ResNets.
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { attentionMap, stageOutputs } from "../../../training/losses/at.ts";
import { createLoss } from "../../../training/losses/index.ts";
import { architecture } from "../../../training/model/resnet.ts";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/** [1, 1, 2, 2] NHWC: two positions, two channels. */
const feature = (a: [number, number], b: [number, number], scale = 1) =>
  tf.tensor4d([a[0] * scale, a[1] * scale, b[0] * scale, b[1] * scale], [1, 1, 2, 2]);

const run = (opts: Record<string, unknown>, student: tf.Tensor4D[], teacher: tf.Tensor4D[]) =>
  tf.tidy(
    () =>
      createLoss("at", opts)
        .compute({
          logits: tf.tensor2d([[0, 0]]),
          labels: tf.tensor1d([0], "int32"),
          features: student,
          teacherFeatures: teacher,
        })
        .dataSync()[0]!,
  );

describe("attention transfer", () => {
  it("maps a feature tensor to the unit-norm mean of its squares over channels", () => {
    // Position 1: (3, 1) -> (9 + 1) / 2 = 5; position 2: (0, 2) -> 2; norm sqrt(29).
    const map = tf.tidy(() => attentionMap(feature([3, 1], [0, -2]), 2).dataSync());
    expect([...map].map((v) => +v.toFixed(6))).toEqual([
      +(5 / Math.sqrt(29)).toFixed(6),
      +(2 / Math.sqrt(29)).toFixed(6),
    ]);
  });

  it("adds beta times the mean squared map difference per stage to the cross-entropy", () => {
    const ce = Math.log(2);
    // Student maps [1, 0] (all at position 1), teacher [0, 1]: mean squared difference (1 + 1) / 2 = 1.
    const s = feature([1, 1], [0, 0]);
    const t = feature([0, 0], [2, 2]);
    expect(run({}, [s], [t])).toBeCloseTo(ce + 1000, 3);
    expect(run({ beta: 10 }, [s, s], [t, s])).toBeCloseTo(ce + 10, 4);
    // Equal maps, whatever the scale of the teacher's features: only the cross-entropy is left.
    expect(run({}, [feature([3, 1], [0, 2])], [feature([3, 1], [0, 2], 7)])).toBeCloseTo(ce, 5);
    expect(run({ beta: 0 }, [], [])).toBeCloseTo(ce, 5);
  });

  it("refuses stages of different sizes and missing features", () => {
    const small = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    expect(() => run({}, [feature([1, 1], [0, 0])], [small])).toThrow(
      /stage 1 is 1x2 in the student, 1x1 in the teacher/,
    );
    expect(() =>
      tf.tidy(() => createLoss("at", {}).compute({ logits: tf.tensor2d([[0, 0]]), labels: tf.tensor1d([0], "int32") })),
    ).toThrow(/needs the student's and the teacher's stage outputs/);
  });

  it("compares the last block of each stage, at the same sizes in the teacher and every student", () => {
    const input = { height: 28, width: 28, channels: 1 };
    const loss = createLoss("at", {});
    expect(loss.needsTeacher).toBe(false);
    expect(loss.features!(architecture("narrow-deep", input, 10))).toEqual([
      "stage1.block4.out",
      "stage2.block5.out",
      "stage3.block4.out",
    ]);
    expect(stageOutputs(architecture("teacher", input, 10))).toEqual([
      "stage1.block2.out",
      "stage2.block2.out",
      "stage3.block2.out",
    ]);
    expect(() => stageOutputs({ input, numClasses: 2, layers: [], output: "x" })).toThrow(/needs a ResNet with stages/);
  });
});
