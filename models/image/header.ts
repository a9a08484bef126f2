// Format and dimensions from an image's first bytes, read before any decoding so that oversized
// images (and decompression bombs claiming huge dimensions) are refused cheaply.
import { ImageError } from "./errors.ts";
import { jpegFrameSize } from "./jpeg-segments.ts";
import type { ImageFormat, ImageLimits } from "./types.ts";

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return "png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return undefined;
}

const be32 = (b: Uint8Array, at: number) =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

function undecodable(format: ImageFormat, why: string): ImageError {
  return new ImageError(400, `cannot decode the ${format.toUpperCase()} image: ${why}`);
}

function pngSize(b: Uint8Array): [number, number] {
  if (b.length < 33 || String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== "IHDR")
    throw undecodable("png", "no IHDR chunk");
  return [be32(b, 16), be32(b, 20)];
}

/** The image's format and size; 415 for other formats, 413 for sizes over the limits. */
export function readHeader(bytes: Uint8Array, limits: ImageLimits): ImageHeader {
  const format = sniffFormat(bytes);
  if (!format) throw new ImageError(415, "the image must be PNG or JPEG (its first bytes match neither)");
  const [width, height] = format === "png" ? pngSize(bytes) : jpegFrameSize(bytes);
  if (width === 0 || height === 0) throw undecodable(format, `it claims ${width}x${height} pixels`);
  if (width > limits.maxSide || height > limits.maxSide || width * height > limits.maxPixels) {
    throw new ImageError(
      413,
      `the image is ${width}x${height}; the limit is ${limits.maxSide} pixels a side and ${limits.maxPixels} pixels in all`,
    );
  }
  return { format, width, height };
}
