// Data sets by name: where each is read from by default and how its images are augmented by default.
import { loadCifar } from "./cifar.ts";
import { type Dataset, DataError } from "./dataset.ts";
import { FASHION_MNIST_DIR, loadFashionMnist } from "./fashion-mnist.ts";

export interface DatasetEntry {
  load: (dir: string) => Dataset;
  /** Used when no --data is given; undefined when the data set has no standard install path. */
  defaultDir?: string;
  /** Padding of the random crop, in pixels (the crop keeps the image size). */
  cropPadding: number;
  flip: boolean;
}

export const DATASETS: Record<string, DatasetEntry> = {
  "fashion-mnist": { load: loadFashionMnist, defaultDir: FASHION_MNIST_DIR, cropPadding: 2, flip: true },
  cifar10: { load: (dir) => loadCifar("cifar10", dir), cropPadding: 4, flip: true },
  cifar100: { load: (dir) => loadCifar("cifar100", dir), cropPadding: 4, flip: true },
};

export function datasetEntry(name: string): DatasetEntry {
  const entry = DATASETS[name];
  if (!entry) throw new DataError(`unknown data set "${name}" (known: ${Object.keys(DATASETS).join(", ")})`);
  return entry;
}

export function loadDataset(name: string, dir?: string): Dataset {
  const entry = datasetEntry(name);
  const from = dir ?? entry.defaultDir;
  if (!from) throw new DataError(`data set "${name}" has no default location: pass --data DIR`);
  return entry.load(from);
}
