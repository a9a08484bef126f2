// In-memory image classification data: raw 8-bit pixels, NHWC, as the original files store them
// (after the CIFAR planes are interleaved). Conversion to normalized floats happens per batch (batches.ts).

export interface ImageSet {
  /** count * height * width * channels bytes, NHWC. */
  images: Uint8Array;
  /** One class index per image (multi-label sets: the first class present, for logs only). */
  labels: Uint8Array;
  /** Multi-label sets only: count * classes bytes, 1 where the class is present (multi-hot). */
  targets?: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

export interface Dataset {
  /** e.g. "fashion-mnist". */
  name: string;
  /** Class names, by class index. */
  classes: string[];
  train: ImageSet;
  test: ImageSet;
  /** A validation split of the data set's own (image folders, VOC); else prepare.ts holds one out of train. */
  val?: ImageSet;
}

/** A problem with a data file; the message names the file. */
export class DataError extends Error {
  override name = "DataError";
}

export function imageSize(set: Pick<ImageSet, "height" | "width" | "channels">): number {
  return set.height * set.width * set.channels;
}

/** Classes per image of a multi-label set (its targets' row length); 0 for single-label sets. */
export function targetWidth(set: Pick<ImageSet, "targets" | "count">): number {
  return set.targets && set.count > 0 ? set.targets.length / set.count : 0;
}

/** The images at the given indices, in that order. */
export function subset(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const size = imageSize(set);
  const classes = targetWidth(set);
  const images = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  const targets = set.targets ? new Uint8Array(indices.length * classes) : undefined;
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    images.set(set.images.subarray(j * size, (j + 1) * size), i * size);
    labels[i] = set.labels[j]!;
    targets?.set(set.targets!.subarray(j * classes, (j + 1) * classes), i * classes);
  }
  return { ...set, images, labels, count: indices.length, ...(targets ? { targets } : {}) };
}

/** Per-channel mean and standard deviation of pixel values scaled to [0, 1]. */
export function channelStats(set: ImageSet): { mean: number[]; std: number[] } {
  const c = set.channels;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  for (let i = 0; i < set.images.length; i++) {
    const v = set.images[i]! / 255;
    const k = i % c;
    sum[k] = sum[k]! + v;
    sumSq[k] = sumSq[k]! + v * v;
  }
  const n = set.images.length / c;
  const mean = [...sum].map((s) => s / n);
  const std = [...sumSq].map((s, k) => Math.sqrt(Math.max(s / n - mean[k]! ** 2, 1e-12)));
  return { mean, std };
}
