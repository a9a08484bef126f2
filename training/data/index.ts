// Data sets by name: where each is read from by default and how its images are augmented by default.
import { loadCifar } from "./cifar.ts";
import { type Dataset, DataError } from "./dataset.ts";
import type { FileSetOptions } from "./decode-set.ts";
import { FASHION_MNIST_DIR, loadFashionMnist } from "./fashion-mnist.ts";
import { loadImageFolder } from "./folder.ts";
import { loadVoc } from "./voc.ts";

export interface DatasetEntry {
  /** Data sets of image files also take how to read them (size, channels, hold-out, bad files). */
  load: (dir: string, options: FileSetOptions) => Dataset | Promise<Dataset>;
  /** Used when no --data is given; undefined when the data set has no standard install path. */
  defaultDir?: string;
  /** Padding of the random crop, in pixels (the crop keeps the image size). */
  cropPadding: number;
  flip: boolean;
  /** Several classes per image (multi-hot targets): sigmoid losses and mAP. */
  multiLabel?: boolean;
  /** Reads image files (asynchronously): openDataset only. */
  imageFiles?: boolean;
}

export const DATASETS: Record<string, DatasetEntry> = {
  "fashion-mnist": { load: loadFashionMnist, defaultDir: FASHION_MNIST_DIR, cropPadding: 2, flip: true },
  cifar10: { load: (dir) => loadCifar("cifar10", dir), cropPadding: 4, flip: true },
  cifar100: { load: (dir) => loadCifar("cifar100", dir), cropPadding: 4, flip: true },
  folder: { load: loadImageFolder, cropPadding: 4, flip: true, imageFiles: true },
  voc: { load: loadVoc, cropPadding: 4, flip: true, multiLabel: true, imageFiles: true },
};

export function datasetEntry(name: string): DatasetEntry {
  const entry = DATASETS[name];
  if (!entry) throw new DataError(`unknown data set "${name}" (known: ${Object.keys(DATASETS).join(", ")})`);
  return entry;
}

/** "32" (square) or "64x48" (width x height); null when the text is neither. */
export function parseSize(text: string): { width: number; height: number } | null {
  const m = /^(\d+)(?:x(\d+))?$/.exec(text.trim());
  if (!m) return null;
  const width = Number(m[1]);
  const height = Number(m[2] ?? m[1]);
  return width > 0 && height > 0 ? { width, height } : null;
}

/** The fields of a run's configuration (config/schema.ts' DistillConfig) that say how image files are read. */
export interface FileSetConfig {
  inputSize?: string | null;
  channels?: number | null;
  skipUnreadable?: boolean;
  holdout?: number;
  seed?: number;
}

/** How a run's configuration reads data sets of image files (fields absent in older configs: defaults). */
export function fileSetOptions(config: FileSetConfig, log: (line: string) => void = console.log): FileSetOptions {
  return {
    size: config.inputSize ? parseSize(config.inputSize) : null,
    channels: config.channels === 1 || config.channels === 3 ? config.channels : null,
    skipUnreadable: config.skipUnreadable ?? true,
    holdout: config.holdout ?? 0.1,
    seed: config.seed ?? 1,
    log,
  };
}

function location(name: string, dir: string | undefined): string {
  const from = dir ?? datasetEntry(name).defaultDir;
  if (!from) throw new DataError(`data set "${name}" has no default location: pass --data DIR`);
  return from;
}

/** Loads a data set whose loader reads its files at once (the IDX and CIFAR ones). */
export function loadDataset(name: string, dir?: string): Dataset {
  const entry = datasetEntry(name);
  if (entry.imageFiles) throw new DataError(`data set "${name}" decodes image files: load it with openDataset`);
  return entry.load(location(name, dir), fileSetOptions({})) as Dataset;
}

/** Loads any data set; image files are decoded as `options` say (defaults: fileSetOptions({})). */
export async function openDataset(
  name: string,
  dir?: string,
  options: FileSetOptions = fileSetOptions({}),
): Promise<Dataset> {
  return datasetEntry(name).load(location(name, dir), options);
}
