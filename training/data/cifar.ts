// CIFAR-10 and CIFAR-100, "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html): fixed-size
// records of label byte(s) then 3072 pixel bytes as three 32x32 planes (red, green, blue). Interleaved
// here to NHWC. `dir` may be the extracted folder or the folder that contains it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readFileOrExplain } from "../io/read.ts";
import { type Dataset, type ImageSet, DataError } from "./dataset.ts";

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;

export const CIFAR10_CLASSES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

// The fine labels, in the order of fine_label_names.txt (used when that file is absent).
export const CIFAR100_CLASSES = (
  "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle " +
  "caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish " +
  "forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle " +
  "mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine " +
  "possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar " +
  "sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree " +
  "wolf woman worm"
).split(" ");

interface Layout {
  folder: string;
  train: string[];
  test: string[];
  /** Label bytes before the pixels; the class is the last one (CIFAR-100: coarse, then fine). */
  labelBytes: number;
  classes: string[];
  namesFile: string;
}

const LAYOUTS = {
  cifar10: {
    folder: "cifar-10-batches-bin",
    train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    test: ["test_batch.bin"],
    labelBytes: 1,
    classes: CIFAR10_CLASSES,
    namesFile: "batches.meta.txt",
  },
  cifar100: {
    folder: "cifar-100-binary",
    train: ["train.bin"],
    test: ["test.bin"],
    labelBytes: 2,
    classes: CIFAR100_CLASSES,
    namesFile: "fine_label_names.txt",
  },
} as const satisfies Record<string, Layout>;

function readRecords(paths: string[], layout: Layout): ImageSet {
  const record = layout.labelBytes + PIXELS;
  const files = paths.map((path) => {
    const bytes = readFileOrExplain(path, "file", (m) => new DataError(m));
    if (bytes.length === 0) throw new DataError(`${path}: empty file`);
    if (bytes.length % record !== 0) {
      throw new DataError(
        `${path}: ${bytes.length} bytes is not a whole number of ${record}-byte records (truncated or not a CIFAR binary file)`,
      );
    }
    return { path, bytes };
  });
  const count = files.reduce((n, f) => n + f.bytes.length / record, 0);
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let n = 0;
  for (const { path, bytes } of files) {
    for (let off = 0; off < bytes.length; off += record, n++) {
      const label = bytes[off + layout.labelBytes - 1]!;
      if (label >= layout.classes.length)
        throw new DataError(
          `${path}: record ${off / record} has label ${label}, not a class (0-${layout.classes.length - 1})`,
        );
      labels[n] = label;
      const px = off + layout.labelBytes;
      const out = n * PIXELS;
      for (let p = 0; p < PLANE; p++) {
        images[out + 3 * p] = bytes[px + p]!;
        images[out + 3 * p + 1] = bytes[px + PLANE + p]!;
        images[out + 3 * p + 2] = bytes[px + 2 * PLANE + p]!;
      }
    }
  }
  return { images, labels, count, height: SIDE, width: SIDE, channels: 3 };
}

function classNames(dir: string, layout: Layout): string[] {
  const path = join(dir, layout.namesFile);
  if (!existsSync(path)) return [...layout.classes];
  const names = readFileSync(path, "utf8")
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== layout.classes.length)
    throw new DataError(`${path}: lists ${names.length} class names, expected ${layout.classes.length}`);
  return names;
}

export function loadCifar(which: keyof typeof LAYOUTS, dir: string): Dataset {
  const layout: Layout = LAYOUTS[which];
  const root = existsSync(join(dir, layout.folder)) ? join(dir, layout.folder) : dir;
  return {
    name: which,
    classes: classNames(root, layout),
    train: readRecords(
      layout.train.map((f) => join(root, f)),
      layout,
    ),
    test: readRecords(
      layout.test.map((f) => join(root, f)),
      layout,
    ),
  };
}
