// JPEG (baseline or progressive, grey, RGB or CMYK) to an Image, via jpeg-js (pure JS), turned as
// its EXIF orientation says; the segments are counted first (jpeg-segments.ts).
import { decode } from "jpeg-js";
import { ImageError } from "./errors.ts";
import { checkJpegSegments } from "./jpeg-segments.ts";
import { applyOrientation, exifOrientation } from "./orientation.ts";
import type { Image, ImageLimits } from "./types.ts";

export function decodeJpeg(bytes: Uint8Array, limits: ImageLimits): Image {
  checkJpegSegments(bytes);
  let decoded: { width: number; height: number; data: Uint8Array; exifBuffer?: Uint8Array };
  try {
    decoded = decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: limits.maxPixels / 1e6,
      maxMemoryUsageInMB: limits.maxJpegDecoderBytes / (1 << 20),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : "corrupt data";
    // Components and sampling factors, not only the size, decide what a JPEG costs to decode.
    if (message.startsWith("maxMemoryUsageInMB"))
      throw new ImageError(413, `the JPEG image needs more than ${limits.maxJpegDecoderBytes} bytes to decode`);
    throw new ImageError(400, `cannot decode the JPEG image: ${message}`);
  }
  const { width, height, data, exifBuffer } = decoded;
  return applyOrientation({ width, height, channels: 3, data }, exifOrientation(exifBuffer));
}
