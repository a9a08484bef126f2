// JPEG (baseline or progressive, grey, RGB or CMYK) to an Image, via jpeg-js (pure JS), turned as
// its EXIF orientation says.
import { decode } from "jpeg-js";
import { HttpError } from "../errors.ts";
import { applyOrientation, exifOrientation } from "./orientation.ts";
import type { Image, ImageLimits } from "./types.ts";

export function decodeJpeg(bytes: Uint8Array, limits: ImageLimits): Image {
  let decoded: { width: number; height: number; data: Uint8Array; exifBuffer?: Uint8Array };
  try {
    decoded = decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: limits.maxPixels / 1e6,
      // Coefficients and planes take about 8 bytes a pixel on top of the 3-byte output.
      maxMemoryUsageInMB: Math.ceil((limits.maxPixels * 12) / (1 << 20)) + 16,
    });
  } catch (err) {
    throw new HttpError(400, `cannot decode the JPEG image: ${err instanceof Error ? err.message : "corrupt data"}`);
  }
  const { width, height, data, exifBuffer } = decoded;
  return applyOrientation({ width, height, channels: 3, data }, exifOrientation(exifBuffer));
}
