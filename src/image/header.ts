// Format and dimensions from an image's first bytes, read before any decoding so that oversized
// images (and decompression bombs claiming huge dimensions) are refused cheaply.
import { HttpError } from "../errors.ts";
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

const be16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const be32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

function undecodable(format: ImageFormat, why: string): HttpError {
  return new HttpError(400, `cannot decode the ${format.toUpperCase()} image: ${why}`);
}

function pngSize(b: Uint8Array): [number, number] {
  if (b.length < 33 || String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== "IHDR") throw undecodable("png", "no IHDR chunk");
  return [be32(b, 16), be32(b, 20)];
}

/** Walks JPEG markers to the first start-of-frame segment, which holds the dimensions. */
function jpegSize(b: Uint8Array): [number, number] {
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) throw undecodable("jpeg", `expected a marker at byte ${at}`);
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // markers without a length
      continue;
    }
    const length = be16(b, at + 2);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (at + 9 > b.length) break;
      return [be16(b, at + 7), be16(b, at + 5)];
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image or scan data before any frame header
    at += 2 + length;
  }
  throw undecodable("jpeg", "no frame header");
}

/** The image's format and size; 415 for other formats, 413 for sizes over the limits. */
export function readHeader(bytes: Uint8Array, limits: ImageLimits): ImageHeader {
  const format = sniffFormat(bytes);
  if (!format) throw new HttpError(415, "the image must be PNG or JPEG (its first bytes match neither)");
  const [width, height] = format === "png" ? pngSize(bytes) : jpegSize(bytes);
  if (width === 0 || height === 0) throw undecodable(format, `it claims ${width}x${height} pixels`);
  if (width > limits.maxSide || height > limits.maxSide || width * height > limits.maxPixels) {
    throw new HttpError(413, `the image is ${width}x${height}; the limit is ${limits.maxSide} pixels a side and ${limits.maxPixels} pixels in all`);
  }
  return { format, width, height };
}
