// An Image to the input tensor a model's manifest entry describes: size, channels, normalization, layout.
import type { ModelEntry } from "../schema.ts";
import { ImageError } from "./errors.ts";
import { resize } from "./resize.ts";
import type { Image } from "./types.ts";

/** ITU-R BT.601 luma, as Pillow's "L" conversion. */
const LUMA = [0.299, 0.587, 0.114] as const;

export interface InputGeometry {
  height: number;
  width: number;
  channels: number;
}

export function inputGeometry(model: ModelEntry): InputGeometry {
  const [, a, b, c] = model.input.shape as [number, number, number, number];
  return model.input.layout === "NCHW" ? { channels: a, height: b, width: c } : { height: a, width: b, channels: c };
}

/** The [1, ...] shape of one image in the model's layout. */
export function singleImageDims(model: ModelEntry): number[] {
  const { height, width, channels } = inputGeometry(model);
  return model.input.layout === "NCHW" ? [1, channels, height, width] : [1, height, width, channels];
}

/**
 * The image as one [1, ...] tensor per model, in each model's layout, (pixel / 255 - mean[c]) / std[c].
 * Models that take the same size share one resize (the costly step for a large image).
 */
export function toModelInputs(image: Image, models: readonly ModelEntry[]): Float32Array[] {
  const resized = new Map<string, Float32Array>();
  return models.map((model) => {
    const { height, width, channels } = inputGeometry(model);
    if (channels !== 1 && channels !== 3)
      throw new ImageError(422, `model "${model.name}" takes ${channels} channels; images give 1 or 3`);
    const key = `${width}x${height}`;
    let small = resized.get(key);
    if (!small) {
      small = resize(image.data, image.width, image.height, image.channels, width, height);
      resized.set(key, small);
    }
    return normalize(small, image.channels, model);
  });
}

/** One image as a [1, ...] tensor in the model's layout. */
export function toModelInput(image: Image, model: ModelEntry): Float32Array {
  return toModelInputs(image, [model])[0]!;
}

/** Resized pixels (interleaved, `from` channels, 0-255) to the model's channels, normalization and layout. */
function normalize(small: Float32Array, from: number, model: ModelEntry): Float32Array {
  const { height, width, channels } = inputGeometry(model);
  const { mean, std } = model.normalization;
  const out = new Float32Array(height * width * channels);
  const nchw = model.input.layout === "NCHW";
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < channels; c++) {
      let v: number;
      if (channels === from) v = small[p * channels + c]!;
      else if (channels === 1) v = LUMA[0] * small[p * 3]! + LUMA[1] * small[p * 3 + 1]! + LUMA[2] * small[p * 3 + 2]!;
      else v = small[p]!;
      out[nchw ? c * height * width + p : p * channels + c] = (v / 255 - mean[c]!) / std[c]!;
    }
  }
  return out;
}
