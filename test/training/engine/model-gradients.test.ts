// The whole training computation of a ResNet on wasm (project kernels: conv gradients, fused batch
// norm, zero-copy identity) against the cpu backend: loss, every parameter's gradient and the
// batch-norm moving statistics; with the convolutions on wasm (XNNPACK) and on native onnxruntime.
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { createModel, disposeModel, forward, trainableVariables } from "../../../training/model/forward.ts";
import { nativeGraphCount, nchwcBlock, useNativeConvolutions } from "../../../training/engine/native-conv.ts";
import { paramSpecs } from "../../../training/model/graph.ts";
import { architecture } from "../../../training/model/resnet.ts";
import { onBothBackends, randomValues, relativeError } from "./gradcheck.ts";

describe("ResNet training step on wasm", () => {
  it.each([
    ["unmodified", false],
    ["unmodified", true],
    ["wide", true], // channels padded to whole NCHWc blocks
  ] as const)(
    "matches cpu for %s: loss, all gradients within 1e-5 relative, moving statistics (native convolutions: %s)",
    async (name, native) => {
      useNativeConvolutions(native);
      const [graphs, blocked] = [nativeGraphCount(), nativeGraphCount("blocked")];
      // 8, 16 and 32 channels (unmodified): whole NCHWc blocks; 15, 30 and 60 (wide): padded to them.
      const graph = architecture(
        name,
        { height: 12, width: 12, channels: 3 },
        5,
        name === "unmodified" ? 2 / 3 : 5 / 6,
      );
      const batch = 6;
      const names = paramSpecs(graph).map((s) => s.name);
      const trainable = paramSpecs(graph)
        .filter((s) => s.kind === "trainable")
        .map((s) => s.name);
      const { cpu, wasm } = await onBothBackends(() => {
        const model = createModel(graph, 7);
        const images = tf.tensor4d(randomValues(batch * 12 * 12 * 3, 21), [batch, 12, 12, 3]);
        const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0], "int32"), 5);
        const { value, grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(labels, forward(model, images, { training: true })) as tf.Scalar,
          trainableVariables(model),
        );
        const out = [
          value,
          ...trainable.map((n) => grads[model.params.get(n)!.name]!),
          ...names.map((n) => model.params.get(n)!.clone()),
        ];
        disposeModel(model);
        return out;
      });
      expect(nativeGraphCount() > graphs).toBe(native);
      expect(nativeGraphCount("blocked") > blocked).toBe(native && nchwcBlock() > 0);
      expect(relativeError(wasm[0]!, cpu[0]!)).toBeLessThan(1e-5);
      trainable.forEach((name, i) => {
        expect(relativeError(wasm[1 + i]!, cpu[1 + i]!), name).toBeLessThan(1e-5);
      });
      names.forEach((name, i) => {
        expect(relativeError(wasm[1 + trainable.length + i]!, cpu[1 + trainable.length + i]!), name).toBeLessThan(1e-5);
      });
    },
  );
});
