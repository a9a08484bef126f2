// The teacher's logits for the batch the student is about to train on (the same augmented images),
// from one of two engines:
//   onnx: the teacher exported to ONNX and run natively by onnxruntime-node. Much faster than any
//         tfjs CPU backend, and it runs on ORT's own threads, so loop.ts overlaps it with the
//         student's step.
//   tfjs: the teacher as a tfjs model in this process, on the training backend.
// "auto" takes onnx when onnxruntime-node loads, else tfjs. Either way the teacher is in inference
// mode (batch-norm moving statistics), so its targets do not depend on the batch.
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batches.ts";
import { nhwcToNchw } from "../data/layout.ts";
import { graphToOnnx } from "../model/to-onnx.ts";
import { type Model, createModel, disposeModel, forward } from "../model/forward.ts";
import type { TeacherEngine } from "../config/schema.ts";
import type { Checkpoint } from "./checkpoint.ts";
import { withTfjsConvolutions } from "../engine/native-conv.ts";

export interface Teacher {
  /** What computes the teacher's logits, for logs and reports. */
  engine: string;
  /** The checkpoint file the teacher was loaded from, when known. */
  source?: string;
  /** Logits [batch.size, classes], row-major. */
  logits(batch: Batch): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** A tfjs model holding the checkpoint's weights. */
export function modelFromCheckpoint(ckpt: Checkpoint, seed = 0): Model {
  const model = createModel(ckpt.graph, seed);
  for (const [name, v] of model.params) {
    const t = ckpt.weights.get(name)!; // decodeCheckpoint checked every parameter is there
    v.assign(tf.tensor(t.data, t.shape));
  }
  return model;
}

function tfjsTeacher(ckpt: Checkpoint): Teacher {
  const model = modelFromCheckpoint(ckpt);
  const { height, width, channels } = ckpt.graph.input;
  return {
    engine: "tfjs",
    logits: async (batch) =>
      tf.tidy(
        () =>
          forward(model, tf.tensor4d(batch.images, [batch.size, height, width, channels]), {
            training: false,
          }).dataSync() as Float32Array,
      ),
    dispose: async () => disposeModel(model),
  };
}

async function onnxTeacher(ckpt: Checkpoint): Promise<Teacher> {
  const ort = await import("onnxruntime-node");
  const tensors = new Map([...ckpt.weights].map(([k, t]) => [k, t.data]));
  const session = await ort.InferenceSession.create(graphToOnnx({ graph: ckpt.graph, tensors }), {
    graphOptimizationLevel: "all",
  });
  const { height: h, width: w, channels: c } = ckpt.graph.input;
  return {
    engine: "onnxruntime-node (CPU)",
    async logits(batch) {
      const nchw = nhwcToNchw({ data: batch.images, count: batch.size, height: h, width: w, channels: c });
      const out = await session.run({ input: new ort.Tensor("float32", nchw, [batch.size, c, h, w]) }, ["logits"]);
      return out.logits!.data as Float32Array;
    },
    dispose: () => session.release(),
  };
}

/**
 * Loads the teacher on the chosen engine. The ONNX engine is checked against the tfjs forward pass on
 * `probe` (a real batch): an exporter bug must not silently feed the students wrong targets.
 */
export async function loadTeacher(
  ckpt: Checkpoint,
  engine: TeacherEngine,
  probe: Batch,
  log: (line: string) => void,
): Promise<Teacher> {
  if (engine === "tfjs") return tfjsTeacher(ckpt);
  let onnx: Teacher;
  try {
    onnx = await onnxTeacher(ckpt);
  } catch (err) {
    if (engine === "onnx") throw new Error(`the ONNX teacher cannot run: ${(err as Error).message}`);
    log(`teacher: onnxruntime-node unavailable (${(err as Error).message.split("\n")[0]}); using the tfjs teacher`);
    return tfjsTeacher(ckpt);
  }
  const reference = tfjsTeacher(ckpt);
  try {
    // The reference runs on tfjs' own convolution kernels, not on onnxruntime (withTfjsConvolutions).
    const [a, b] = [await onnx.logits(probe), await withTfjsConvolutions(() => reference.logits(probe))];
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(b[i]!));
    }
    if (!(worst <= 1e-3 * Math.max(1, scale))) {
      await onnx.dispose();
      throw new Error(
        `the ONNX teacher disagrees with the tfjs teacher (max |logit diff| ${worst.toExponential(2)} on ${probe.size} images)`,
      );
    }
    log(`teacher: onnxruntime-node matches tfjs to ${worst.toExponential(1)} (max |logit diff|, ${probe.size} images)`);
  } finally {
    await reference.dispose();
  }
  return onnx;
}
