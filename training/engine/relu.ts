// The ReLU gradient as one pass on wasm. tfjs computes it as dy * step(cast(x)): three kernels and
// two full-size temporaries for every ReLU of the network, ~5% of a training step once the
// convolutions run natively. On wasm, one SIMD pass (simd-passes.ts) writes dy where x > 0, else 0;
// other backends keep tfjs' own formula.
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { backendSimdPasses } from "./simd-passes.ts";

export const RELU_GRAD = "NarrowdeepReluGrad";

function reluGradKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const wasm = backend as BackendWasm;
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const out = wasm.makeOutput(x.shape, "float32"); // before taking views: it may grow the heap
  const size = tf.util.sizeFromShape(x.shape);
  const simd = backendSimdPasses(wasm);
  const groups = simd ? size >> 2 : 0;
  if (groups > 0)
    simd!.reluGrad(
      wasm.getMemoryOffset(out.dataId) as number,
      wasm.getMemoryOffset(dy.dataId) as number,
      wasm.getMemoryOffset(x.dataId) as number,
      groups,
    );
  const o = wasm.typedArrayFromHeap(out) as Float32Array;
  const d = wasm.typedArrayFromHeap(dy) as Float32Array;
  const v = wasm.typedArrayFromHeap(x) as Float32Array;
  for (let i = groups * 4; i < size; i++) o[i] = v[i]! > 0 ? d[i]! : 0;
  return out;
}

let registered = false;

/** Registers the wasm kernel and makes it ReLU's gradient on wasm (idempotent). */
export function registerReluGradient(): void {
  if (registered) return;
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: "wasm",
    kernelFunc: reluGradKernel as unknown as tf.KernelFunc,
  });
  tf.registerGradient({
    kernelName: "Relu",
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => {
      const [x] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      if (tf.getBackend() === "wasm" && x.dtype === "float32")
        return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: g, x }) as tf.Tensor };
      return { x: () => g.mul(tf.step(x.toFloat())) }; // tfjs' own ReLU gradient
    },
  });
  registered = true;
}
