// EXIF orientation: cameras store pixels as the sensor saw them and say in a tag how to turn them for
// display. A model should see the picture as a person does, so JPEGs are turned first.
import type { Image } from "./types.ts";

/** The orientation tag (1-8) of an EXIF TIFF block; 1 (as stored) when absent or unreadable. */
export function exifOrientation(exif: Uint8Array | undefined): number {
  if (!exif) return 1;
  const tiff = exif[0] === 0 ? exif.subarray(1) : exif; // jpeg-js keeps one byte of the "Exif\0\0" padding
  if (tiff.length < 8) return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return 1;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const at = ifd + 2 + i * 12;
    if (at + 12 > tiff.length) return 1;
    if (view.getUint16(at, little) === 0x0112) {
      const value = view.getUint16(at + 8, little);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

/** The image turned as its orientation tag says (5-8 swap width and height). */
export function applyOrientation(image: Image, orientation: number): Image {
  if (orientation === 1) return image;
  const { width: w, height: h, channels } = image;
  const swap = orientation >= 5;
  const outW = swap ? h : w;
  const outH = swap ? w : h;
  // Source pixel of output pixel (x, y), for each orientation.
  const source: Record<number, (x: number, y: number) => [number, number]> = {
    2: (x, y) => [w - 1 - x, y],
    3: (x, y) => [w - 1 - x, h - 1 - y],
    4: (x, y) => [x, h - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, h - 1 - x],
    7: (x, y) => [w - 1 - y, h - 1 - x],
    8: (x, y) => [w - 1 - y, x],
  };
  const from = source[orientation];
  if (!from) return image;
  const data = new Uint8Array(image.data.length);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const [sx, sy] = from(x, y);
      const s = (sy * w + sx) * channels;
      const d = (y * outW + x) * channels;
      for (let c = 0; c < channels; c++) data[d + c] = image.data[s + c]!;
    }
  }
  return { width: outW, height: outH, channels, data };
}
