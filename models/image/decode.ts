// Bytes of an uploaded image to pixels: refuse unknown formats and oversized images from the header,
// then decode with the format's pure-JS decoder.
import { readHeader } from "./header.ts";
import { decodeJpeg } from "./jpeg.ts";
import { decodePng } from "./png.ts";
import type { Image, ImageFormat, ImageLimits } from "./types.ts";

export async function decodeImage(
  bytes: Uint8Array,
  limits: ImageLimits,
): Promise<{ image: Image; format: ImageFormat }> {
  const { format } = readHeader(bytes, limits);
  const image = format === "png" ? decodePng(bytes) : decodeJpeg(bytes, limits);
  return { image, format };
}
