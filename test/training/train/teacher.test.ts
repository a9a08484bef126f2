import { beforeAll, describe, expect, it } from "vitest";
import { type Batch, makeBatch, normalizationTable, viewCount } from "../../../training/data/batches.ts";
import type { ImageSet } from "../../../training/data/dataset.ts";
import { Rng } from "../../../training/data/rng.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { createModel, disposeModel } from "../../../training/model/forward.ts";
import { architecture } from "../../../training/model/resnet.ts";
import type { Checkpoint, StoredTensor } from "../../../training/train/checkpoint.ts";
import { withNormalization } from "../../../training/train/pipeline.ts";
import { loadTeacher } from "../../../training/train/teacher.ts";
import { cacheTeacher } from "../../../training/train/teacher-cache.ts";

let ckpt: Checkpoint;
const set: ImageSet = { images: Uint8Array.from({ length: 6 * 8 * 8 * 2 }, (_, i) => (i * 37) % 256), labels: new Uint8Array(6), count: 6, height: 8, width: 8, channels: 2 };
const ours = { mean: [0.4, 0.5], std: [0.2, 0.3] };
const theirs = { mean: [0.45, 0.3], std: [0.25, 0.1] };
const batch = (norm: typeof ours) => makeBatch(set, [0, 1, 2, 3, 4, 5], normalizationTable(norm), null, new Rng(0));
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

beforeAll(async () => {
  await initBackend("wasm", { log: () => {} });
  const graph = architecture("teacher", { height: 8, width: 8, channels: 2 }, 5, 0.125);
  const model = createModel(graph, 4);
  const weights = new Map<string, StoredTensor>([...model.params].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]));
  disposeModel(model);
  ckpt = { graph, weights, optimizer: new Map(), meta: {} as Checkpoint["meta"] };
});

describe("teacher soft targets", () => {
  it("are the same from onnxruntime-node and from tfjs", async () => {
    const onnx = await loadTeacher(ckpt, "onnx", batch(ours), () => {});
    const tfjs = await loadTeacher(ckpt, "tfjs", batch(ours), () => {});
    expect(onnx.engine).toMatch(/onnxruntime-node/);
    expect(tfjs.engine).toBe("tfjs");
    const [a, b] = [await onnx.logits(batch(ours)), await tfjs.logits(batch(ours))];
    expect(a).toHaveLength(6 * 5);
    expect(maxDiff(a, b)).toBeLessThan(1e-4);
    await onnx.dispose();
    await tfjs.dispose();
  });

  it("see the teacher's own normalization when the run's differs", async () => {
    const tfjs = await loadTeacher(ckpt, "tfjs", batch(ours), () => {});
    const direct = await tfjs.logits(batch(theirs));
    const mapped = await withNormalization(tfjs, ours, theirs).logits(batch(ours));
    expect(maxDiff(mapped, direct)).toBeLessThan(1e-4);
    expect(maxDiff(await tfjs.logits(batch(ours)), direct)).toBeGreaterThan(1e-2); // the mapping matters
    expect(withNormalization(tfjs, ours, ours)).toBe(tfjs);
    await tfjs.dispose();
  });
});

describe("teacher cache", () => {
  const aug = { cropPadding: 1, flip: true };
  const views = viewCount(aug)!;
  const augmented = (seed: number, indices = [0, 1, 2, 3, 4, 5]) => makeBatch(set, indices, normalizationTable(ours), aug, new Rng(seed));

  it("answers each augmented view as the teacher does, and runs the teacher only on views it has not seen", async () => {
    const onnx = await loadTeacher(ckpt, "onnx", batch(ours), () => {});
    let ran = 0;
    const counted = { ...onnx, logits: (b: Batch) => ((ran += b.size), onnx.logits(b)) };
    const cached = cacheTeacher(counted, set.count, views, 5)!;
    expect(cached.engine).toMatch(/onnxruntime-node.*cached per augmented view/);
    for (let seed = 0; seed < 12; seed++) {
      const b = augmented(seed);
      expect(maxDiff(await cached.logits(b), await onnx.logits(b)), `seed ${seed}`).toBeLessThan(1e-6);
    }
    const { hits, misses } = cached.stats();
    expect(hits + misses).toBe(72);
    expect(misses).toBe(ran);
    expect(hits).toBeGreaterThan(0); // 72 draws of 6 x 18 views repeat some
    // Seen batches again: all from the cache, the teacher does not run.
    const before = ran;
    for (let seed = 0; seed < 12; seed++) await cached.logits(augmented(seed));
    expect(ran).toBe(before);
    // A batch without view keys (random erasing) goes to the teacher.
    await cached.logits(makeBatch(set, [0, 1], normalizationTable(ours), { ...aug, erasing: 1 }, new Rng(1)));
    expect(ran).toBe(before + 2);
    await onnx.dispose();
  });

  it("is not made when it would not fit its memory budget", async () => {
    const tfjs = await loadTeacher(ckpt, "tfjs", batch(ours), () => {});
    expect(cacheTeacher(tfjs, 1000, 50, 10, 1000 * 50 * 10 * 4 - 1)).toBeNull();
    expect(cacheTeacher(tfjs, 1000, 50, 10, 1000 * 50 * 10 * 4)).not.toBeNull();
    await tfjs.dispose();
  });
});
