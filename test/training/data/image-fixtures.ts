// Writes small image data sets the way users have them: PNG and JPEG files of mixed sizes and colour
// types in class folders, and a Pascal VOC folder with XML annotations. Images are learnable: what
// marks a class is a bright patch at a place of its own over deterministic noise.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encode as encodePng } from "fast-png";
import jpeg from "jpeg-js";

/** Deterministic noise in [0, 64). */
export function noise(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 24) % 64;
  };
}

export type Pixel = (x: number, y: number, c: number) => number;

/** A PNG of 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels, 8 or 16 bits. */
export function pngBytes(
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  pixel: Pixel,
  depth: 8 | 16 = 8,
): Uint8Array {
  const data = depth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const alpha = (channels === 2 && c === 1) || (channels === 4 && c === 3);
        const v = alpha ? 255 : pixel(x, y, Math.min(c, 2));
        data[(y * width + x) * channels + c] = depth === 16 ? v * 257 : v;
      }
    }
  }
  return encodePng({ width, height, data, channels, depth });
}

/** A baseline JPEG (colour; jpeg-js writes RGB), quality 95. */
export function jpegBytes(width: number, height: number, pixel: Pixel): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) data[p * 4 + c] = pixel(p % width, Math.floor(p / width), c);
    data[p * 4 + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ width, height, data }, 95).data);
}

/** Class k: a bright 1/4-wide vertical band at column k of `classes` over noise (any size). */
export function banded(k: number, classes: number, width: number, seed: number): Pixel {
  const n = noise(seed);
  const values = new Map<string, number>();
  return (x, y, c) => {
    const key = `${x},${y}`;
    if (!values.has(key)) values.set(key, n());
    const band = Math.floor((x / width) * classes) === k;
    return band ? 200 + (values.get(key)! >> 2) + c : values.get(key)!;
  };
}

export interface FolderFixture {
  classes: string[];
  /** Files per class of the training split. */
  train: number;
  /** Files per class in val/ and test/ folders; omitted: no such folders (held out instead). */
  val?: number;
  test?: number;
}

/**
 * An image folder: classes as folders, most images 12x12, every fourth 20x16, formats cycling
 * through grey PNG, RGB PNG, RGBA 16-bit PNG and JPEG.
 */
export function writeImageFolder(dir: string, f: FolderFixture): void {
  const splits: [string, number | undefined][] = [
    ["train", f.train],
    ["val", f.val],
    ["test", f.test],
  ];
  let seed = 1;
  for (const [split, count] of splits) {
    if (count === undefined) continue;
    f.classes.forEach((name, k) => {
      mkdirSync(join(dir, split, name), { recursive: true });
      for (let i = 0; i < count; i++) {
        const [w, h] = i % 4 === 3 ? [20, 16] : [12, 12];
        const px = banded(k, f.classes.length, w, seed++);
        const kind = i % 4;
        const [ext, bytes] =
          kind === 0
            ? ["png", pngBytes(w, h, 1, px)]
            : kind === 1
              ? ["png", pngBytes(w, h, 3, px)]
              : kind === 2
                ? ["png", pngBytes(w, h, 4, px, 16)]
                : ["jpg", jpegBytes(w, h, px)];
        writeFileSync(join(dir, split, name, `img${i}.${ext}`), bytes);
      }
    });
  }
}

/**
 * A Pascal VOC folder: JPEGImages/<id>.jpg (16x16 colour), Annotations/<id>.xml with one <object> per
 * class present (class k: a bright patch in cell k of a 2x2 grid; some objects "difficult", some
 * with <part>s whose own <name> is not a class), ImageSets/Main/train.txt and val.txt.
 */
export function writeVoc(
  dir: string,
  classes: string[],
  counts: { train: number; val: number },
): { targets: Map<string, number[]> } {
  for (const sub of ["JPEGImages", "Annotations", join("ImageSets", "Main")])
    mkdirSync(join(dir, sub), { recursive: true });
  const targets = new Map<string, number[]>();
  let n = 0;
  for (const [split, count] of [
    ["train", counts.train],
    ["val", counts.val],
  ] as const) {
    const ids: string[] = [];
    for (let i = 0; i < count; i++, n++) {
      const id = `2007_${String(n).padStart(6, "0")}`;
      // Every image has one or two classes: n's own, and the next one on every third image.
      const present = classes.map((_, k) =>
        k === n % classes.length || (n % 3 === 0 && k === (n + 1) % classes.length) ? 1 : 0,
      );
      targets.set(id, present);
      const bg = noise(n + 7);
      const px: Pixel = (x, y, c) => {
        const cell = Math.floor(y / 8) * 2 + Math.floor(x / 8);
        return present[cell % classes.length] && cell < classes.length ? 220 - c * 10 : bg();
      };
      writeFileSync(join(dir, "JPEGImages", `${id}.jpg`), jpegBytes(16, 16, px));
      const objects = classes
        .filter((_, k) => present[k])
        .map(
          (name, j) =>
            `  <object>\n    <name>${name}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n    <difficult>${(n + j) % 5 === 0 ? 1 : 0}</difficult>\n` +
            `    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>8</xmax><ymax>8</ymax></bndbox>\n` +
            (n % 4 === 0
              ? `    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>\n`
              : "") +
            `  </object>\n`,
        )
        .join("");
      writeFileSync(
        join(dir, "Annotations", `${id}.xml`),
        `<?xml version="1.0"?>\n<!-- written by the test -->\n<annotation>\n  <folder>VOC2007</folder>\n  <filename>${id}.jpg</filename>\n  <source><database>The VOC2007 Database &amp; test</database></source>\n  <size><width>16</width><height>16</height><depth>3</depth></size>\n  <segmented>0</segmented>\n${objects}</annotation>\n`,
      );
      ids.push(id);
    }
    writeFileSync(join(dir, "ImageSets", "Main", `${split}.txt`), `${ids.join("\n")}\n`);
  }
  return { targets };
}
