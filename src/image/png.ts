// PNG of every colour type and bit depth to an Image, via fast-png (pure JS).
import { decode } from "fast-png";
import { HttpError } from "../errors.ts";
import type { Image } from "./types.ts";

const be32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

const undecodable = (why: string) => new HttpError(400, `cannot decode the PNG image: ${why}`);

/** Upper bound of the inflated image data: one filter byte per row (per Adam7 pass) plus the samples. */
function inflatedBound(b: Uint8Array): number {
  const width = be32(b, 16);
  const height = be32(b, 20);
  const depth = b[24]!;
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[b[25]!] ?? 4;
  return height * (Math.ceil((width * channels * depth) / 8) + 1) + 4 * height + 8 * channels * 2 + 64;
}

function idatChunks(b: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 8; at + 8 <= b.length; ) {
    const length = be32(b, at);
    const type = String.fromCharCode(b[at + 4]!, b[at + 5]!, b[at + 6]!, b[at + 7]!);
    if (type === "IDAT") chunks.push(b.subarray(at + 8, Math.min(b.length, at + 8 + length)));
    if (type === "IEND") break;
    at += 12 + length;
  }
  return chunks;
}

/**
 * A decompression bomb inflates far beyond what its dimensions need. Inflate once with a cap before
 * handing the file to the decoder, which would inflate everything. Corrupt streams are left to it.
 */
async function inflatesBeyond(chunks: Uint8Array[], limit: number): Promise<boolean> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  void (async () => {
    for (const c of chunks) await writer.write(c as Uint8Array<ArrayBuffer>);
    await writer.close();
  })().catch(() => undefined);
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => undefined);
        return true;
      }
    }
  } catch {
    return false;
  }
}

export async function decodePng(bytes: Uint8Array): Promise<Image> {
  const depthByte = bytes[24]!;
  if (bytes[28] === 1 && depthByte < 8) throw new HttpError(415, "interlaced PNGs with fewer than 8 bits per sample are not supported");
  if (await inflatesBeyond(idatChunks(bytes), inflatedBound(bytes))) {
    throw new HttpError(413, "the PNG image data inflates beyond what its dimensions need (a decompression bomb?)");
  }
  let png: ReturnType<typeof decode>;
  try {
    png = decode(bytes, { checkCrc: true });
  } catch (err) {
    throw undecodable(err instanceof Error ? err.message : "corrupt data");
  }
  const { width, height, depth, channels: ch, data, palette, transparency } = png;
  const max = depth === 16 ? 65535 : (1 << depth) - 1;
  const rowSamples = width * ch;
  const rowBytes = Math.ceil((rowSamples * depth) / 8);
  // Sample i of row y, as an integer in [0, max]; sub-byte depths are packed big-endian within a byte.
  const sample =
    depth >= 8
      ? (y: number, i: number) => data[y * rowSamples + i]!
      : (y: number, i: number) => {
          const bit = i * depth;
          return (data[y * rowBytes + (bit >> 3)]! >> (8 - depth - (bit & 7))) & max;
        };
  if (data.length < (depth >= 8 ? rowSamples * height : rowBytes * height)) throw undecodable("truncated image data");

  const colour = palette !== undefined || ch >= 3;
  const out = colour ? 3 : 1;
  const pixels = new Uint8Array(width * height * out);
  const hasAlpha = ch === 2 || ch === 4;
  const key = !palette && transparency && transparency.length === (colour ? 3 : 1) ? transparency : undefined;
  const to8 = (v: number) => Math.round((v * 255) / max);
  const px = new Array<number>(4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let alpha = 1;
      if (palette) {
        const entry = palette[sample(y, x)];
        if (!entry) throw undecodable("a pixel indexes past the palette");
        px[0] = entry[0]!;
        px[1] = entry[1]!;
        px[2] = entry[2]!;
        alpha = (entry[3] ?? 255) / 255;
      } else {
        const base = x * ch;
        for (let c = 0; c < out; c++) px[c] = sample(y, base + c);
        if (hasAlpha) alpha = sample(y, base + ch - 1) / max;
        else if (key && key.every((k, c) => px[c] === k)) alpha = 0;
        for (let c = 0; c < out; c++) px[c] = to8(px[c]!);
      }
      const at = (y * width + x) * out;
      for (let c = 0; c < out; c++) pixels[at + c] = Math.round(px[c]! * alpha);
    }
  }
  return { width, height, channels: out, data: pixels };
}
