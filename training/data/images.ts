// One image file to training pixels, with the decoder the Worker uses (models/image/): the same PNG and JPEG
// decoders, EXIF orientation, alpha compositing over black, antialiased (Pillow-like) resize and
// grey/RGB conversion that /v1/classify applies to an upload, so a model trains on what it is served.
// models/image/ is where the two halves share it (plain functions, no Worker APIs).
import type { ModelEntry } from "../../models/schema.ts";
import { decodeImage } from "../../models/image/decode.ts";
import { readHeader } from "../../models/image/header.ts";
import { toModelInput } from "../../models/image/preprocess.ts";
import type { Image } from "../../models/image/types.ts";
import { DataError } from "./dataset.ts";

export interface Geometry {
  height: number;
  width: number;
  channels: 1 | 3;
}

// Training reads the user's own files: limits far above an upload's, there only to turn a corrupt
// header that claims billions of pixels into an error instead of an allocation failure. Not annotated
// as ImageLimits, so it also fits that type while the Worker's limits gain fields.
const LIMITS = { maxSide: 2 ** 15, maxPixels: 2 ** 27, maxJpegDecoderBytes: 2 ** 31 };

function explain(path: string, err: unknown): DataError {
  return new DataError(`${path}: ${err instanceof Error ? err.message : String(err)}`);
}

/** Width and height from the file's header (nothing decoded); DataError naming the path when unreadable. */
export function headerSize(bytes: Uint8Array, path: string): { width: number; height: number } {
  try {
    const { width, height } = readHeader(bytes, LIMITS);
    return { width, height };
  } catch (err) {
    throw explain(path, err);
  }
}

/** The decoded image, turned as its EXIF orientation says, 1 (grey) or 3 (colour) channels. */
export async function decodeFile(bytes: Uint8Array, path: string): Promise<Image> {
  try {
    return (await decodeImage(bytes, LIMITS)).image;
  } catch (err) {
    throw explain(path, err);
  }
}

/**
 * The image resized to the geometry and converted to its channels (BT.601 luma for grey, replicated
 * grey for RGB), NHWC bytes. The Worker's preprocessing takes a manifest entry: this one asks for
 * [0, 1] values (mean 0, std 1) in NHWC, which are rounded back to bytes, as Pillow stores a resize.
 */
export function toPixels(image: Image, g: Geometry): Uint8Array {
  const entry = {
    name: "training",
    input: {
      name: "input",
      shape: [1, g.height, g.width, g.channels],
      datatype: "FP32" as const,
      layout: "NHWC" as const,
    },
    normalization: { mean: new Array<number>(g.channels).fill(0), std: new Array<number>(g.channels).fill(1) },
  } satisfies Pick<ModelEntry, "name" | "input" | "normalization">;
  // toModelInput reads only the name, input and normalization of an entry.
  const unit = toModelInput(image, entry as unknown as ModelEntry);
  const out = new Uint8Array(unit.length);
  for (let i = 0; i < unit.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(unit[i]! * 255)));
  return out;
}
