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
  if (!hasAlpha && !key && max === 255 && ch === out && s instanceof Uint8Array) return { width, height, channels: out, data: s };
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
function unpackSamples(png: { width: number; height: number; depth: number; channels: number; data: Uint8Array | Uint8ClampedArray | Uint16Array }): Uint8Array | Uint16Array {
  const { width, height, depth, channels, data } = png;
  if (depth >= 8) return data instanceof Uint8ClampedArray ? new Uint8Array(data.buffer, data.byteOffset, data.length) : data;
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
