// An image folder data set, as torchvision's ImageFolder lays one out:
//
//   DIR/train/<class>/*.png|*.jpg|*.jpeg     required; one folder per class
//   DIR/val/<class>/...                      optional; else held out of train (--holdout)
//   DIR/test/<class>/...                     optional; else held out of train (--holdout)
//
// Classes are the train/ folder names in code-point order (the same on every machine and file
// system); images of any size and colour type become one size and grey or RGB (decode-set.ts).
import { existsSync, readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { type Dataset, DataError } from "./dataset.ts";
import { type FileSetOptions, type ImageItem, decodeSplits } from "./decode-set.ts";
import { holdOut } from "./holdout.ts";

const EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);
/** Labels are stored as bytes. */
const MAX_CLASSES = 256;

const visible = (dir: string) =>
  readdirSync(dir)
    .filter((name) => !name.startsWith("."))
    .sort();

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** What happens to a folder entry that cannot be listed or statted (a symlink loop, no permission). */
type Unreadable = (path: string, err: unknown) => void;

function unreadableEntries(options: FileSetOptions): Unreadable {
  return (path, err) => {
    const why = `${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    if (!options.skipUnreadable) throw new DataError(`${why} (--skip-unreadable skips such entries instead)`);
    options.log(`data: skipping an unreadable entry: ${why}`);
  };
}

/** The image files of one class folder, sorted; counts the other files it skips. */
function classFiles(dir: string, ignored: string[], unreadable: Unreadable): string[] {
  const files: string[] = [];
  let names: string[];
  try {
    names = visible(dir);
  } catch (err) {
    unreadable(dir, err);
    return files;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (!EXTENSIONS.has(extname(name).toLowerCase())) {
      ignored.push(path);
      continue;
    }
    try {
      if (statSync(path).isFile()) files.push(path);
      else ignored.push(path);
    } catch (err) {
      unreadable(path, err);
    }
  }
  return files;
}

/** One split folder's items, by class index. Classes the split lacks are fine outside train. */
function readSplit(dir: string, classes: string[], ignored: string[], unreadable: Unreadable): ImageItem[][] {
  const byClass: ImageItem[][] = classes.map(() => []);
  for (const name of visible(dir)) {
    const path = join(dir, name);
    if (!isDir(path)) {
      ignored.push(path);
      continue;
    }
    const label = classes.indexOf(name);
    if (label < 0)
      throw new DataError(
        `${path}: class "${name}" is not one of the training classes (the folders of ${join(dir, "..", "train")})`,
      );
    byClass[label] = classFiles(path, ignored, unreadable).map((p) => ({ path: p, label }));
  }
  return byClass;
}

export async function loadImageFolder(dir: string, options: FileSetOptions): Promise<Dataset> {
  const trainDir = join(dir, "train");
  if (!isDir(trainDir))
    throw new DataError(
      `${trainDir}: not found (an image folder data set needs ${dir}/train/<class>/ with PNG or JPEG images in each)`,
    );
  const classes = visible(trainDir).filter((name) => isDir(join(trainDir, name)));
  if (classes.length === 0)
    throw new DataError(`${trainDir}: no class folders (expected ${trainDir}/<class>/ with PNG or JPEG images)`);
  if (classes.length < 2)
    throw new DataError(`${trainDir}: only one class folder ("${classes[0]}"); a classifier needs at least two`);
  if (classes.length > MAX_CLASSES)
    throw new DataError(`${trainDir}: ${classes.length} class folders; at most ${MAX_CLASSES} are supported`);
  const ignored: string[] = [];
  const unreadable = unreadableEntries(options);
  const train = readSplit(trainDir, classes, ignored, unreadable);
  train.forEach((items, k) => {
    if (items.length === 0)
      throw new DataError(`${join(trainDir, classes[k]!)}: no PNG or JPEG images (every class needs training images)`);
  });
  const given: Record<string, ImageItem[]> = {};
  for (const split of ["val", "test"]) {
    const splitDir = join(dir, split);
    if (!isDir(splitDir)) continue;
    const items = readSplit(splitDir, classes, ignored, unreadable).flat();
    if (items.length === 0) throw new DataError(`${splitDir}: no PNG or JPEG images in its class folders`);
    given[split] = items;
  }
  if (ignored.length)
    options.log(
      `data: ignored ${ignored.length} entries that are not PNG or JPEG files in class folders (e.g. ${ignored[0]})`,
    );
  const missing = ["val", "test"].filter((s) => !given[s]);
  const split = holdOut(train, missing, options.holdout, options.seed, dir);
  if (missing.length)
    options.log(
      `data: ${missing.join(" and ")} held out of ${trainDir} (${missing.map((m) => `${split.held[m]!.length} images`).join(", ")}; fraction ${options.holdout} per class, seed ${options.seed})`,
    );

  const { sets, geometry, skipped } = await decodeSplits({ train: split.train, ...split.held, ...given }, options);
  const trainSet = sets.train!;
  const present = new Set(trainSet.labels);
  const lost = classes.filter((_, k) => !present.has(k));
  if (lost.length) throw new DataError(`${trainDir}: no readable training image left in class ${lost.join(", ")}`);
  options.log(
    `data: ${dir}: ${classes.length} classes, images resized to ${geometry.width}x${geometry.height}, ${geometry.channels === 1 ? "grey" : "RGB"}${skipped.length ? `; ${skipped.length} unreadable files skipped` : ""}`,
  );
  return { name: "folder", classes, train: trainSet, val: sets.val!, test: sets.test! };
}
