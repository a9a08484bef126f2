import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Batch, makeBatch, normalizationTable, viewCount } from "../../../training/data/batches.ts";
import type { ImageSet } from "../../../training/data/dataset.ts";
import { Rng } from "../../../training/data/rng.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { createModel, disposeModel } from "../../../training/model/forward.ts";
import { architecture } from "../../../training/model/resnet.ts";
import type { Checkpoint } from "../../../training/train/checkpoint.ts";
import type { StoredTensor } from "../../../training/model/stored-tensor.ts";
import { withNormalization } from "../../../training/train/pipeline.ts";
import { loadTeacher } from "../../../training/train/teacher.ts";
import { cacheTeacher } from "../../../training/train/teacher-cache.ts";

let ckpt: Checkpoint;
const set: ImageSet = {
  images: Uint8Array.from({ length: 6 * 8 * 8 * 2 }, (_, i) => (i * 37) % 256),
  labels: new Uint8Array(6),
  count: 6,
  height: 8,
  width: 8,
  channels: 2,
};
const ours = { mean: [0.4, 0.5], std: [0.2, 0.3] };
const theirs = { mean: [0.45, 0.3], std: [0.25, 0.1] };
const batch = (norm: typeof ours) => makeBatch(set, [0, 1, 2, 3, 4, 5], normalizationTable(norm), null, new Rng(0));
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

beforeAll(async () => {
  await initBackend("wasm", { log: () => {} });
  const graph = architecture("teacher", { height: 8, width: 8, channels: 2 }, 5, 0.125);
  const model = createModel(graph, 4);
  const weights = new Map<string, StoredTensor>(
    [...model.params].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
  );
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
  const augmented = (seed: number, indices = [0, 1, 2, 3, 4, 5]) =>
    makeBatch(set, indices, normalizationTable(ours), aug, new Rng(seed));

  it("answers each augmented view as the teacher does, and runs the teacher only on views it has not seen", async () => {
    const onnx = await loadTeacher(ckpt, "onnx", batch(ours), () => {});
    let ran = 0;
    const counted = {
      ...onnx,
      logits: (b: Batch) => {
        ran += b.size;
        return onnx.logits(b);
      },
    };
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
    expect(cacheTeacher(tfjs, 1000, 50, 10, { maxBytes: 1000 * 50 * 10 * 4 - 1 })).toBeNull();
    expect(cacheTeacher(tfjs, 1000, 50, 10, { maxBytes: 1000 * 50 * 10 * 4 })).not.toBeNull();
    await tfjs.dispose();
  });

  describe("kept in a file", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "teacher-cache-"));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** The onnx teacher, counting the images it runs on. */
    async function counting() {
      const onnx = await loadTeacher(ckpt, "onnx", batch(ours), () => {});
      const counter = { ran: 0 };
      const teacher = {
        ...onnx,
        logits: (b: Batch) => {
          counter.ran += b.size;
          return onnx.logits(b);
        },
      };
      return { teacher, counter, onnx };
    }

    it("answers a later process from the views an earlier one computed, exactly", async () => {
      const file = { path: join(dir, "logits.bin"), key: "k1" };
      const first = await counting();
      const a = cacheTeacher(first.teacher, set.count, views, 5, { file })!;
      const values: Float32Array[] = [];
      for (const seed of [0, 1, 2]) values.push(await a.logits(augmented(seed)));
      expect(existsSync(file.path)).toBe(false); // written on dispose (or every few minutes), not per batch
      await a.dispose();
      expect(existsSync(file.path)).toBe(true);

      const second = await counting();
      const b = cacheTeacher(second.teacher, set.count, views, 5, { file })!;
      expect(b.stats().loaded).toBe(a.stats().misses);
      expect(a.stats().misses).toBe(first.counter.ran);
      for (const [seed, want] of values.entries()) expect(await b.logits(augmented(seed))).toEqual(want);
      expect(second.counter.ran).toBe(0);
      await b.dispose();
    });

    it("merges what two processes computed, and refuses a file of another key", async () => {
      const file = { path: join(dir, "logits.bin"), key: "k1" };
      const [one, two] = [await counting(), await counting()];
      const a = cacheTeacher(one.teacher, set.count, views, 5, { file })!;
      const b = cacheTeacher(two.teacher, set.count, views, 5, { file })!; // opened before a saved
      const fromA = await a.logits(augmented(1, [0, 1, 2]));
      const fromB = await b.logits(augmented(1, [3, 4, 5]));
      a.save();
      b.save(); // merges a's entries before replacing the file
      const three = await counting();
      const c = cacheTeacher(three.teacher, set.count, views, 5, { file })!;
      expect(await c.logits(augmented(1, [0, 1, 2]))).toEqual(fromA);
      expect(await c.logits(augmented(1, [3, 4, 5]))).toEqual(fromB);
      expect(three.counter.ran).toBe(0);
      for (const t of [a, b, c]) await t.dispose();

      expect(() => cacheTeacher(three.teacher, set.count, views, 5, { file: { ...file, key: "k2" } })).toThrow(
        /another teacher or data set/,
      );
      writeFileSync(file.path, "not a cache");
      expect(() => cacheTeacher(three.teacher, set.count, views, 5, { file })).toThrow(
        /not a teacher logits cache file/,
      );
    });
  });
});
