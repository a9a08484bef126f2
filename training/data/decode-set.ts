// Lists of image files (an image folder's, a VOC layout's) to in-memory ImageSets at one geometry.
//
// The cache of decoded images is the ImageSet itself: every file is decoded and resized once, when
// the data set loads, into bytes at the training size; every epoch, evaluation and teacher run reads
// those bytes and never a file again. On top of that, sets decoded in this process are remembered by
// the files' paths, sizes and modification times and the geometry asked for, so the export at the end
// of `npm run distill` (which reloads the test split) does not decode them a second time.
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { Image } from "../../models/image/types.ts";
import { type ImageSet, DataError } from "./dataset.ts";
import { type Geometry, decodeFile, headerSize, toPixels } from "./images.ts";

export interface ImageItem {
  path: string;
  /** Class index (multi-label: the first class present). */
  label: number;
  /** Multi-label: one byte per class, 1 where present. */
  targets?: Uint8Array;
}

export interface DecodeOptions {
  /** Null: the size most training images have (read from their headers). */
  size: { width: number; height: number } | null;
  /** Null: grey when every training image decodes grey, else RGB. */
  channels: 1 | 3 | null;
  /** Skip (and report) files that cannot be read or decoded; false: refuse the data set. */
  skipUnreadable: boolean;
  log: (line: string) => void;
}

export interface DecodedSplits {
  geometry: Geometry;
  sets: Record<string, ImageSet>;
  /** The files skipped as unreadable, with why. */
  skipped: string[];
}

let decodes = 0;
/** Files decoded by this process so far (tests check that a second load decodes none). */
export function decodeCount(): number {
  return decodes;
}

const remembered = new Map<string, DecodedSplits>();

function cacheKey(splits: Record<string, ImageItem[]>, options: DecodeOptions): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ size: options.size, channels: options.channels, skip: options.skipUnreadable }));
  for (const [split, items] of Object.entries(splits)) {
    hash.update(`\n${split}`);
    for (const item of items) {
      let stamp = "missing";
      try {
        const s = statSync(item.path);
        stamp = `${s.size}:${s.mtimeMs}`;
      } catch {
        // A missing file is reported when the set is decoded; here it only changes the key.
      }
      hash.update(`\n${item.path}\0${stamp}\0${item.label}\0${item.targets ? item.targets.join("") : ""}`);
    }
  }
  return hash.digest("hex");
}

function read(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DataError(`${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The width x height most of the files have; ties go to the larger image. */
function commonSize(
  items: ImageItem[],
  unreadable: (item: ImageItem, err: unknown) => void,
): { width: number; height: number } {
  const counts = new Map<string, number>();
  for (const item of items) {
    try {
      const { width, height } = headerSize(read(item.path), item.path);
      counts.set(`${width}x${height}`, (counts.get(`${width}x${height}`) ?? 0) + 1);
    } catch (err) {
      unreadable(item, err);
    }
  }
  const sizes = [...counts].map(([key, n]) => ({
    n,
    width: Number(key.split("x")[0]),
    height: Number(key.split("x")[1]),
  }));
  sizes.sort((a, b) => b.n - a.n || b.width * b.height - a.width * a.height);
  if (!sizes[0]) throw new DataError("no readable training image to take the input size from");
  return { width: sizes[0].width, height: sizes[0].height };
}

function assemble(pixels: Uint8Array[], kept: ImageItem[], g: Geometry): ImageSet {
  const size = g.height * g.width * g.channels;
  const images = new Uint8Array(kept.length * size);
  pixels.forEach((p, i) => {
    images.set(p, i * size);
  });
  const classes = kept[0]?.targets?.length;
  const targets = classes === undefined ? undefined : new Uint8Array(kept.length * classes);
  kept.forEach((item, i) => {
    targets?.set(item.targets!, i * classes!);
  });
  return {
    images,
    labels: Uint8Array.from(kept, (item) => item.label),
    count: kept.length,
    height: g.height,
    width: g.width,
    channels: g.channels,
    ...(targets ? { targets } : {}),
  };
}

/** Grey bytes to RGB by repeating each value (exact, unlike the other direction). */
function greyToRgb(grey: Uint8Array): Uint8Array {
  const rgb = new Uint8Array(grey.length * 3);
  for (let i = 0; i < grey.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i]!;
  return rgb;
}

/**
 * Decodes every split's files. The training split ("train", which must be present) decides the size
 * and channels when the options leave them open; the other splits are converted to the same geometry.
 */
export async function decodeSplits(
  splits: Record<string, ImageItem[]>,
  options: DecodeOptions,
): Promise<DecodedSplits> {
  const train = splits.train;
  if (!train) throw new Error("decodeSplits needs a train split");
  const key = cacheKey(splits, options);
  const known = remembered.get(key);
  if (known) return known;

  const skipped: string[] = [];
  const seen = new Set<string>();
  const unreadable = (item: ImageItem, err: unknown) => {
    const why = err instanceof Error ? err.message : String(err);
    if (!options.skipUnreadable) throw new DataError(`${why} (--skip-unreadable skips such files instead)`);
    if (seen.has(item.path)) return;
    seen.add(item.path);
    skipped.push(why);
    options.log(`data: skipping an unreadable image: ${why}`);
  };
  const size = options.size ?? commonSize(train, unreadable);

  const decodeAll = async (
    items: ImageItem[],
    channels: 1 | 3 | null,
  ): Promise<{ pixels: Uint8Array[]; kept: ImageItem[]; grey: boolean[] }> => {
    const pixels: Uint8Array[] = [];
    const kept: ImageItem[] = [];
    const grey: boolean[] = [];
    for (const item of items) {
      if (seen.has(item.path)) continue;
      let image: Image;
      try {
        image = await decodeFile(read(item.path), item.path);
        decodes++;
      } catch (err) {
        unreadable(item, err);
        continue;
      }
      pixels.push(toPixels(image, { ...size, channels: channels ?? image.channels }));
      kept.push(item);
      grey.push(image.channels === 1);
    }
    return { pixels, kept, grey };
  };

  const first = await decodeAll(train, options.channels);
  const channels = options.channels ?? (first.grey.every(Boolean) ? 1 : 3);
  // Automatic channels decoded each image as it was; grey ones join colour ones as RGB.
  const trainPixels = first.pixels.map((p, i) =>
    channels === 3 && first.grey[i] && options.channels === null ? greyToRgb(p) : p,
  );
  const geometry: Geometry = { ...size, channels };
  const sets: Record<string, ImageSet> = { train: assemble(trainPixels, first.kept, geometry) };
  for (const [name, items] of Object.entries(splits)) {
    if (name === "train") continue;
    const { pixels, kept } = await decodeAll(items, channels);
    sets[name] = assemble(pixels, kept, geometry);
  }
  const result = { geometry, sets, skipped };
  remembered.set(key, result);
  return result;
}

/** How a data set of image files is read: the decoding options plus how missing splits are made. */
export interface FileSetOptions extends DecodeOptions {
  /** Fraction of the training files held out for each split the data set does not have (val, test). */
  holdout: number;
  /** Seed of that hold-out. */
  seed: number;
}
