// One batch of normalized float images (NHWC) with optional augmentation: a random crop of the image
// zero-padded by `cropPadding` pixels on each side (the crop keeps the size), a random horizontal
// flip, then random erasing (Zhong et al. 2020): with probability `erasing`, a rectangle of 2-40% of
// the image, aspect ratio 0.3-3.3, is filled with random pixel values. Done in plain JS: it is a
// small fraction of a training step.
import { type ImageSet, imageSize, targetWidth } from "./dataset.ts";
import type { Rng } from "./rng.ts";

export interface Augmentation {
  /** 0 disables the random crop. */
  cropPadding: number;
  flip: boolean;
  /** Probability of random erasing; absent or 0: none. */
  erasing?: number;
}

/** Zhong et al.'s defaults: erased area 2-40% of the image, aspect ratio from 0.3 to 1/0.3. */
const ERASE_AREA = [0.02, 0.4] as const;
const ERASE_LOG_ASPECT = Math.log(0.3);
const ERASE_TRIES = 100;

export interface Batch {
  /** size * height * width * channels floats, NHWC, normalized. */
  images: Float32Array;
  labels: Int32Array;
  /** Multi-label sets: size * classes, 1 where the class is present, else 0. */
  targets?: Float32Array;
  size: number;
  /**
   * Which view of which image each one is, index * viewCount + view, when the augmentation has a
   * finite set of views (crop and flip without erasing): a cache of the teacher's logits keys on it.
   */
  views?: Uint32Array;
}

/**
 * How many distinct images the augmentation makes of one image: every crop offset times the two
 * flips; null when it is not a finite set (random erasing).
 */
export function viewCount(augment: Augmentation | null): number | null {
  if (augment?.erasing) return null;
  const side = 2 * (augment?.cropPadding ?? 0) + 1;
  return side * side * (augment?.flip ? 2 : 1);
}

/** Lookup table from a byte value to its normalized float, per channel. */
export function normalizationTable(norm: { mean: number[]; std: number[] }): Float32Array[] {
  return norm.mean.map((m, c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - m) / norm.std[c]!));
}

/**
 * Builds the batch of images `indices` of `set`. With augmentation, draws from `rng` (three numbers
 * an image), so the stream of batches is reproducible from the RNG state.
 */
export function makeBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  table: Float32Array[],
  augment: Augmentation | null,
  rng: Rng,
): Batch {
  const { height: h, width: w, channels: c } = set;
  const size = imageSize(set);
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  const classes = targetWidth(set);
  const targets = set.targets ? new Float32Array(indices.length * classes) : undefined;
  const views = viewCount(augment);
  const keys = views === null ? undefined : new Uint32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i]! * size;
    const dst = i * size;
    labels[i] = set.labels[indices[i]!]!;
    if (targets) for (let k = 0; k < classes; k++) targets[i * classes + k] = set.targets![indices[i]! * classes + k]!;
    const pad = augment?.cropPadding ?? 0;
    const dy = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
    const dx = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
    const flip = augment?.flip ? rng.next() < 0.5 : false;
    if (keys)
      keys[i] =
        indices[i]! * views! + ((dy + pad) * (2 * pad + 1) + (dx + pad)) * (augment?.flip ? 2 : 1) + (flip ? 1 : 0);
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let x = 0; x < w; x++) {
        const sx = (flip ? w - 1 - x : x) + dx;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        for (let k = 0; k < c; k++) {
          const v = inside ? set.images[src + (sy * w + sx) * c + k]! : 0;
          images[dst + (y * w + x) * c + k] = table[k]![v]!;
        }
      }
    }
    if (augment?.erasing && rng.next() < augment.erasing) erase(images.subarray(dst, dst + size), h, w, c, table, rng);
  }
  return { images, labels, size: indices.length, ...(targets ? { targets } : {}), ...(keys ? { views: keys } : {}) };
}

/** Fills one random rectangle of a normalized NHWC image with random pixel values (in place). */
function erase(image: Float32Array, h: number, w: number, c: number, table: Float32Array[], rng: Rng): void {
  for (let attempt = 0; attempt < ERASE_TRIES; attempt++) {
    const area = h * w * (ERASE_AREA[0] + rng.next() * (ERASE_AREA[1] - ERASE_AREA[0]));
    const aspect = Math.exp(ERASE_LOG_ASPECT * (1 - 2 * rng.next()));
    const eh = Math.round(Math.sqrt(area * aspect));
    const ew = Math.round(Math.sqrt(area / aspect));
    if (eh < 1 || ew < 1 || eh >= h || ew >= w) continue;
    const y0 = rng.int(h - eh + 1);
    const x0 = rng.int(w - ew + 1);
    for (let y = y0; y < y0 + eh; y++) {
      for (let x = x0; x < x0 + ew; x++) {
        for (let k = 0; k < c; k++) image[(y * w + x) * c + k] = table[k]![rng.int(256)]!;
      }
    }
    return;
  }
}
