// An Image to the input tensor a model's manifest entry describes: size, channels, normalization, layout.
import type { ModelEntry } from "../../models/schema.ts";
import { HttpError } from "../errors.ts";
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

/** One image as a [1, ...] tensor in the model's layout, (pixel / 255 - mean[c]) / std[c]. */
export function toModelInput(image: Image, model: ModelEntry): Float32Array {
  const { height, width, channels } = inputGeometry(model);
  if (channels !== 1 && channels !== 3) throw new HttpError(422, `model "${model.name}" takes ${channels} channels; images give 1 or 3`);
  const small = resize(image.data, image.width, image.height, image.channels, width, height);
  const { mean, std } = model.normalization;
  const out = new Float32Array(height * width * channels);
  const nchw = model.input.layout === "NCHW";
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < channels; c++) {
      let v: number;
      if (channels === image.channels) v = small[p * channels + c]!;
      else if (channels === 1) v = LUMA[0] * small[p * 3]! + LUMA[1] * small[p * 3 + 1]! + LUMA[2] * small[p * 3 + 2]!;
      else v = small[p]!;
      out[nchw ? c * height * width + p : p * channels + c] = (v / 255 - mean[c]!) / std[c]!;
    }
  }
  return out;
}
