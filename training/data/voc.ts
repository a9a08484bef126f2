// A multi-label data set in the Pascal VOC layout (VOC2007/VOC2012 devkit folders):
//
//   DIR/JPEGImages/<id>.jpg          the images (.jpeg or .png also found)
//   DIR/Annotations/<id>.xml         one annotation per image; its <object><name>s are the labels
//   DIR/ImageSets/Main/train.txt     image ids of the training split, one per line
//   DIR/ImageSets/Main/val.txt       the validation split
//   DIR/ImageSets/Main/test.txt      optional (VOC2007's test set)
//
// Splits: train.txt trains; the test split is test.txt where it exists, else val.txt (VOC2012's test
// labels are not public, so val is where it is evaluated); the validation split is val.txt when
// test.txt exists, else held out of train (--holdout). DIR may also be a folder holding exactly one
// VOCdevkit/VOC* or VOC* folder. An image's target is multi-hot: 1 for every class with an object
// in it, "difficult" objects included. Classes: VOC's 20 in their usual order when every name is one
// of them, else every name found, in code-point order (a custom data set in this layout).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type Dataset, DataError } from "./dataset.ts";
import { type FileSetOptions, type ImageItem, decodeSplits } from "./decode-set.ts";
import { holdOut } from "./holdout.ts";
import { vocObjects } from "./voc-xml.ts";

export const VOC_CLASSES = [
  "aeroplane",
  "bicycle",
  "bird",
  "boat",
  "bottle",
  "bus",
  "car",
  "cat",
  "chair",
  "cow",
  "diningtable",
  "dog",
  "horse",
  "motorbike",
  "person",
  "pottedplant",
  "sheep",
  "sofa",
  "train",
  "tvmonitor",
];

const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"];

/** The folder with JPEGImages/ and Annotations/: DIR itself, or its one VOCdevkit/VOC* or VOC* folder. */
function vocRoot(dir: string): string {
  if (existsSync(join(dir, "JPEGImages"))) return dir;
  const candidates = [dir, join(dir, "VOCdevkit")]
    .filter((d) => existsSync(d))
    .flatMap((d) =>
      readdirSync(d)
        .filter((n) => n.startsWith("VOC") && existsSync(join(d, n, "JPEGImages")))
        .map((n) => join(d, n)),
    );
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length > 1)
    throw new DataError(`${dir}: holds several VOC folders (${candidates.join(", ")}); pass one of them as --data`);
  throw new DataError(`${dir}: not a Pascal VOC folder (no JPEGImages/ here or in VOCdevkit/VOC*/)`);
}

/** An image id names files in JPEGImages/ and Annotations/: a plain name, never a path out of them. */
const IMAGE_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

function readIds(path: string): string[] {
  const ids: string[] = [];
  readFileSync(path, "utf8")
    .split(/\r?\n/)
    .forEach((line, i) => {
      const id = line.trim().split(/\s+/)[0]!;
      if (id.length === 0) return;
      if (!IMAGE_ID.test(id))
        throw new DataError(
          `${path}:${i + 1}: image id ${JSON.stringify(id.slice(0, 80))}${id.length > 80 ? "..." : ""} is not a file name (letters, digits, "_", "-" and "." not first)`,
        );
      ids.push(id);
    });
  if (ids.length === 0) throw new DataError(`${path}: lists no image ids`);
  return ids;
}

interface Annotated {
  id: string;
  path: string;
  names: string[];
}

function annotate(root: string, id: string): Annotated {
  const xmlPath = join(root, "Annotations", `${id}.xml`);
  if (!existsSync(xmlPath)) throw new DataError(`${xmlPath}: not found (every listed image needs its annotation)`);
  let names: string[];
  try {
    names = vocObjects(readFileSync(xmlPath, "utf8")).map((o) => o.name);
  } catch (err) {
    throw new DataError(`${xmlPath}: not a VOC annotation: ${(err as Error).message}`);
  }
  const image = IMAGE_EXTENSIONS.map((ext) => join(root, "JPEGImages", `${id}${ext}`)).find((p) => existsSync(p));
  // A missing image is an unreadable one: decode-set.ts skips or refuses it as --skip-unreadable says.
  return { id, path: image ?? join(root, "JPEGImages", `${id}.jpg`), names };
}

function toItem(a: Annotated, classes: string[]): ImageItem {
  const targets = new Uint8Array(classes.length);
  for (const name of a.names) targets[classes.indexOf(name)] = 1;
  const first = targets.indexOf(1);
  return { path: a.path, label: Math.max(first, 0), targets };
}

export async function loadVoc(dir: string, options: FileSetOptions): Promise<Dataset> {
  const root = vocRoot(dir);
  const lists = join(root, "ImageSets", "Main");
  const list = (name: string) =>
    existsSync(join(lists, `${name}.txt`)) ? readIds(join(lists, `${name}.txt`)).map((id) => annotate(root, id)) : null;
  const train = list("train");
  if (!train) throw new DataError(`${join(lists, "train.txt")}: not found (the training split's image ids)`);
  const listedTest = list("test");
  const val = list("val");
  const test = listedTest ?? val;
  if (!test) throw new DataError(`${lists}: neither test.txt nor val.txt, so nothing to evaluate on`);
  const splitVal = listedTest ? val : null;

  const found = [...new Set([...train, ...test, ...(splitVal ?? [])].flatMap((a) => a.names))];
  const classes = found.every((n) => VOC_CLASSES.includes(n)) ? VOC_CLASSES : found.sort();
  const unlabelled = train.filter((a) => a.names.length === 0);
  if (unlabelled.length === train.length)
    throw new DataError(`${join(root, "Annotations")}: no training image has an <object>`);
  const trainItems = train.map((a) => toItem(a, classes));
  const split = splitVal
    ? { train: trainItems, held: {} as Record<string, ImageItem[]> }
    : holdOut([trainItems], ["val"], options.holdout, options.seed, root);
  if (!splitVal)
    options.log(
      `data: validation held out of train.txt (${split.held.val!.length} images; fraction ${options.holdout}, seed ${options.seed})`,
    );
  const { sets, geometry, skipped } = await decodeSplits(
    {
      train: split.train,
      val: splitVal ? splitVal.map((a) => toItem(a, classes)) : split.held.val!,
      test: test.map((a) => toItem(a, classes)),
    },
    options,
  );
  options.log(
    `data: VOC ${root}: ${classes.length} classes, test split ${listedTest ? "test.txt" : "val.txt"}, images resized to ${geometry.width}x${geometry.height}, ${geometry.channels === 1 ? "grey" : "RGB"}` +
      `${skipped.length ? `; ${skipped.length} unreadable images skipped` : ""}`,
  );
  return { name: "voc", classes, train: sets.train!, val: sets.val!, test: sets.test! };
}
