// PNG of every colour type and bit depth to an Image, via fast-png (pure JS), after png-chunks.ts has
// walked the file and capped inflates have measured what it would cost.
import { decode } from "fast-png";
import { ImageError } from "./errors.ts";
import { inflatedLength } from "./inflate.ts";
import { type PngHeader, undecodablePng as undecodable, walkPng } from "./png-chunks.ts";
import type { Image } from "./types.ts";

/** Most bytes the compressed ancillary chunks (ICC profile, text) of one file may inflate to, together. */
export const PNG_MAX_ANCILLARY_INFLATED = 1 << 20;

/** Upper bound of the inflated image data: one filter byte per row (per Adam7 pass) plus the samples. */
function inflatedBound({ width, height, depth, channels }: PngHeader): number {
  return height * (Math.ceil((width * channels * depth) / 8) + 1) + 4 * height + 8 * channels * 2 + 64;
}

export function decodePng(bytes: Uint8Array): Image {
  const chunks = walkPng(bytes);
  if (chunks.header.interlaced && chunks.header.depth < 8)
    throw new ImageError(415, "interlaced PNGs with fewer than 8 bits per sample are not supported");
  // Decompression bombs: inflating once with a cap costs at most what an honest file of this size would.
  let ancillary = 0;
  for (const { type, stream } of chunks.compressed) {
    ancillary += inflatedLength([stream], PNG_MAX_ANCILLARY_INFLATED - ancillary);
    if (ancillary > PNG_MAX_ANCILLARY_INFLATED)
      throw new ImageError(
        413,
        `the PNG's ${type} chunk inflates beyond ${PNG_MAX_ANCILLARY_INFLATED} bytes, the limit for its ancillary chunks together (a decompression bomb?)`,
      );
  }
  // The image data may run over by 8 MiB while it is counted, about what an honest decode at the
  // Worker's pixel limit holds: fewer, larger slices (each push copies fflate's 32 KiB window).
  const bound = inflatedBound(chunks.header);
  if (inflatedLength(chunks.data, bound, Math.max(bound, 8 << 20)) > bound) {
    throw new ImageError(413, "the PNG image data inflates beyond what its dimensions need (a decompression bomb?)");
  }
  let png: ReturnType<typeof decode>;
  try {
    png = decode(chunks.decodable, { checkCrc: true });
  } catch (err) {
    throw undecodable(err instanceof Error ? err.message : "corrupt data");
  }
  const { width, height, depth, channels: ch, palette, transparency } = png;
  const max = depth === 16 ? 65535 : (1 << depth) - 1;
  const s = unpackSamples(png);
  const n = width * height;
  if (s.length < n * ch) throw undecodable("truncated image data");

  if (palette) {
    const pixels = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) {
      const entry = palette[s[p]!];
      if (!entry) throw undecodable("a pixel indexes past the palette");
      const alpha = (entry[3] ?? 255) / 255;
      for (let c = 0; c < 3; c++) pixels[p * 3 + c] = Math.round(entry[c]! * alpha);
    }
    return { width, height, channels: 3, data: pixels };
  }

  const out = ch >= 3 ? 3 : 1;
  const hasAlpha = ch === 2 || ch === 4;
  // tRNS for grey or RGB: one colour (in raw sample values) that is fully transparent.
  const key = transparency && transparency.length === out ? transparency : undefined;
  if (!hasAlpha && !key && max === 255 && ch === out && s instanceof Uint8Array)
    return { width, height, channels: out, data: s };
  const pixels = new Uint8Array(n * out);
  const scale = 255 / max;
  for (let p = 0; p < n; p++) {
    const base = p * ch;
    let alpha = hasAlpha ? s[base + ch - 1]! / max : 1;
    if (key && s[base] === key[0] && (out === 1 || (s[base + 1] === key[1] && s[base + 2] === key[2]))) alpha = 0;
    for (let c = 0; c < out; c++) pixels[p * out + c] = Math.round(s[base + c]! * scale * alpha);
  }
  return { width, height, channels: out, data: pixels };
}

/** One array element per sample, rows unpadded: sub-byte depths are unpacked (big-endian within a byte). */
function unpackSamples(png: {
  width: number;
  height: number;
  depth: number;
  channels: number;
  data: Uint8Array | Uint8ClampedArray | Uint16Array;
}): Uint8Array | Uint16Array {
  const { width, height, depth, channels, data } = png;
  if (depth >= 8)
    return data instanceof Uint8ClampedArray ? new Uint8Array(data.buffer, data.byteOffset, data.length) : data;
  const rowSamples = width * channels;
  const rowBytes = Math.ceil((rowSamples * depth) / 8);
  if (data.length < rowBytes * height) throw undecodable("truncated image data");
  const mask = (1 << depth) - 1;
  const out = new Uint8Array(rowSamples * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < rowSamples; i++) {
      const bit = i * depth;
      out[y * rowSamples + i] = (data[y * rowBytes + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}
