// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60,000 train and 10,000 test 28x28 grey images in IDX
// files, gzip or not. Debian's dataset-fashion-mnist package installs them at DEFAULT_DIR.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Dataset, type ImageSet, DataError } from "./dataset.ts";
import { readIdx } from "./idx.ts";

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** The file for `base` in dir: gzip first, then uncompressed. Names the expected file when neither exists. */
function locate(dir: string, base: string): string {
  for (const name of [`${base}.gz`, base]) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  throw new DataError(`${join(dir, base)}(.gz): file not found (Fashion-MNIST needs ${base}[.gz] in ${dir})`);
}

function loadSplit(dir: string, split: "train" | "t10k"): ImageSet {
  const imagesPath = locate(dir, `${split}-images-idx3-ubyte`);
  const labelsPath = locate(dir, `${split}-labels-idx1-ubyte`);
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (images.dims.length !== 3)
    throw new DataError(`${imagesPath}: expected 3 dimensions (count, rows, columns), found ${images.dims.length}`);
  if (labels.dims.length !== 1)
    throw new DataError(`${labelsPath}: expected 1 dimension (count), found ${labels.dims.length}`);
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== count)
    throw new DataError(`${labelsPath}: has ${labels.dims[0]} labels but ${imagesPath} has ${count} images`);
  const bad = labels.data.findIndex((l) => l >= FASHION_MNIST_CLASSES.length);
  if (bad >= 0) throw new DataError(`${labelsPath}: label ${labels.data[bad]} at index ${bad} is not a class (0-9)`);
  return { images: images.data, labels: labels.data, count, height, width, channels: 1 };
}

export function loadFashionMnist(dir = FASHION_MNIST_DIR): Dataset {
  return {
    name: "fashion-mnist",
    classes: FASHION_MNIST_CLASSES,
    train: loadSplit(dir, "train"),
    test: loadSplit(dir, "t10k"),
  };
}
