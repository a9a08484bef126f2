import { describe, expect, it } from "vitest";
import { makeBatch, normalizationTable, viewCount } from "../../../training/data/batches.ts";
import { type ImageSet, channelStats } from "../../../training/data/dataset.ts";
import { prepareData } from "../../../training/data/prepare.ts";
import { Rng } from "../../../training/data/rng.ts";

function set(
  count: number,
  h: number,
  w: number,
  c: number,
  pixel: (i: number, y: number, x: number, k: number) => number,
): ImageSet {
  const images = new Uint8Array(count * h * w * c);
  for (let i = 0; i < count; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) images[((i * h + y) * w + x) * c + k] = pixel(i, y, x, k);
  return {
    images,
    labels: Uint8Array.from({ length: count }, (_, i) => i % 3),
    count,
    height: h,
    width: w,
    channels: c,
  };
}

describe("validation split and subsets", () => {
  const ds = {
    name: "t",
    classes: ["a", "b", "c"],
    train: set(100, 2, 2, 1, (i) => i),
    test: set(30, 2, 2, 1, (i) => i),
  };

  it("holds out disjoint validation images, reproducibly from the seed", () => {
    const p = prepareData(ds, { trainLimit: 50, valSize: 10, testLimit: 20, seed: 7 });
    expect([p.train.count, p.val!.count, p.test.count]).toEqual([40, 10, 20]);
    const ids = (s: ImageSet) => [...Array(s.count).keys()].map((i) => s.images[i * 4]!);
    const train = new Set(ids(p.train));
    expect(ids(p.val!).some((v) => train.has(v))).toBe(false);
    expect(new Set([...train, ...ids(p.val!)]).size).toBe(50);
    expect(prepareData(ds, { trainLimit: 50, valSize: 10, testLimit: 20, seed: 7 })).toEqual(p);
    expect(ids(prepareData(ds, { trainLimit: 50, valSize: 10, testLimit: 20, seed: 8 }).val!)).not.toEqual(ids(p.val!));
    expect(p.normalization).toEqual(channelStats(p.train));
  });

  it("rejects a validation split that leaves no training images", () => {
    expect(() => prepareData(ds, { trainLimit: 10, valSize: 10, testLimit: 0, seed: 1 })).toThrow(
      /validation size must be a whole number from 0 to 9/,
    );
  });

  it("computes per-channel mean and std on [0, 1] pixels", () => {
    const s = set(2, 1, 2, 2, (i, _y, x, k) => (k === 0 ? 255 * ((i + x) % 2) : 51));
    const { mean, std } = channelStats(s);
    expect(mean[0]).toBeCloseTo(0.5, 6);
    expect(std[0]).toBeCloseTo(0.5, 6);
    expect(mean[1]).toBeCloseTo(0.2, 6);
    expect(std[1]).toBeLessThan(1e-5);
  });
});

describe("batches and augmentation", () => {
  const s = set(2, 3, 3, 1, (i, y, x) => 10 * i + 3 * y + x + 1);
  const table = normalizationTable({ mean: [0], std: [1 / 255] }); // maps each byte to itself
  const grid = (b: Float32Array, i: number) => [...b.subarray(i * 9, i * 9 + 9)];

  it("without augmentation gives the normalized images in index order", () => {
    const b = makeBatch(s, [1, 0], normalizationTable({ mean: [0.5], std: [0.25] }), null, new Rng(1));
    expect([...b.labels]).toEqual([1, 0]);
    expect(b.images[0]).toBeCloseTo((11 / 255 - 0.5) / 0.25, 5);
  });

  it("flips horizontally and crops with zero padding", () => {
    // Find seeds whose draws give a pure flip and a pure shift, then check the pixels.
    const flipOnly = makeBatch(s, [0], table, { cropPadding: 0, flip: true }, new Rng(3));
    const plain = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const mirrored = [3, 2, 1, 6, 5, 4, 9, 8, 7];
    expect([plain, mirrored]).toContainEqual(grid(flipOnly.images, 0));
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++)
      seen.add(grid(makeBatch(s, [0], table, { cropPadding: 0, flip: true }, new Rng(seed)).images, 0).join());
    expect(seen).toEqual(new Set([plain.join(), mirrored.join()]));
    const crops = new Set<string>();
    for (let seed = 0; seed < 200; seed++)
      crops.add(grid(makeBatch(s, [0], table, { cropPadding: 1, flip: false }, new Rng(seed)).images, 0).join());
    expect(crops.size).toBe(9); // every shift in [-1, 1] x [-1, 1]
    expect(crops).toContain([5, 6, 0, 8, 9, 0, 0, 0, 0].join()); // shifted by (+1, +1), zero fill
    expect(crops).toContain([0, 0, 0, 0, 1, 2, 0, 4, 5].join()); // shifted by (-1, -1)
  });

  it("random erasing fills one rectangle of 2-40% of the image with random values, with its probability", () => {
    const big = set(1, 20, 20, 1, () => 0); // all pixels 0: anything non-zero was erased
    const areas: number[] = [];
    for (let seed = 0; seed < 400; seed++) {
      const img = makeBatch(big, [0], table, { cropPadding: 0, flip: false, erasing: 0.5 }, new Rng(seed)).images;
      const erased: [number, number][] = [];
      img.forEach((v, i) => {
        v !== 0 && erased.push([Math.floor(i / 20), i % 20]);
      });
      if (erased.length === 0) continue;
      const ys = erased.map((p) => p[0]);
      const xs = erased.map((p) => p[1]);
      const box = (Math.max(...ys) - Math.min(...ys) + 1) * (Math.max(...xs) - Math.min(...xs) + 1);
      expect(erased.length).toBeGreaterThan(0.9 * box); // one rectangle (a few random values are 0)
      areas.push(box / 400);
    }
    expect(areas.length).toBeGreaterThan(160); // p = 0.5 of 400
    expect(areas.length).toBeLessThan(240);
    expect(Math.min(...areas)).toBeGreaterThanOrEqual(0.01);
    expect(Math.max(...areas)).toBeLessThanOrEqual(0.45);
    expect(
      makeBatch(big, [0], table, { cropPadding: 0, flip: false, erasing: 0 }, new Rng(1)).images.every((v) => v === 0),
    ).toBe(true);
  });

  it("names each augmented image's view, one key per distinct image (the teacher cache's key)", () => {
    const aug = { cropPadding: 1, flip: true };
    expect(viewCount(aug)).toBe(18);
    expect(viewCount({ ...aug, erasing: 0.5 })).toBeNull();
    expect(viewCount(null)).toBe(1);
    const byKey = new Map<number, string>();
    for (let seed = 0; seed < 300; seed++) {
      const b = makeBatch(s, [0, 1], table, aug, new Rng(seed));
      for (let i = 0; i < 2; i++) {
        const key = b.views![i]!;
        expect(Math.floor(key / 18)).toBe(i);
        const pixels = grid(b.images, i).join();
        expect(byKey.get(key) ?? pixels).toBe(pixels);
        byKey.set(key, pixels);
      }
    }
    expect(byKey.size).toBe(36); // every view of both images was drawn
    expect(new Set(byKey.values()).size).toBe(36); // and no two keys name the same pixels
    expect(makeBatch(s, [0], table, { ...aug, erasing: 0.5 }, new Rng(1)).views).toBeUndefined();
  });

  it("is reproducible from the RNG state", () => {
    const rng = new Rng(5);
    const aug = { cropPadding: 1, flip: true, erasing: 0.5 };
    makeBatch(s, [0, 1], table, aug, rng);
    const state = rng.state();
    const a = makeBatch(s, [0, 1], table, aug, rng);
    const b = makeBatch(s, [0, 1], table, aug, Rng.fromState(state));
    expect(b).toEqual(a);
  });
});
