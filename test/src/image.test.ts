// The image pipeline on its own: headers, decoding, resizing.
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../src/image/decode.ts";
import { readHeader } from "../../src/image/header.ts";
import { resize } from "../../src/image/resize.ts";
import { encodeFlatGreyJpeg } from "./flat-jpeg.ts";
import { jpegs } from "./fixtures.ts";

const limits = { maxSide: 4096, maxPixels: 4096 * 1024, maxJpegDecoderBytes: 128 << 20 };

/** CRC-32 as PNG chunks use it. */
function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** The PNG with a tRNS chunk (the encoder writes none for grey or RGB) right after IHDR. */
function withTrns(png: Uint8Array, body: number[]): Uint8Array {
  const chunk = new Uint8Array(12 + body.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length);
  chunk.set([0x74, 0x52, 0x4e, 0x53, ...body], 4);
  view.setUint32(8 + body.length, crc32(chunk.subarray(4, 8 + body.length)));
  const ihdrEnd = 8 + 25;
  return Uint8Array.from([...png.subarray(0, ihdrEnd), ...chunk, ...png.subarray(ihdrEnd)]);
}

describe("decodeImage", () => {
  it("gives PNG pixels back exactly, sub-byte depths included", async () => {
    const w = 13;
    const h = 5;
    const values = Array.from({ length: w * h }, (_, i) => i % 2);
    const packed = new Uint8Array(Math.ceil(w / 8) * h);
    values.forEach((v, i) => {
      const x = i % w;
      const y = Math.floor(i / w);
      packed[y * Math.ceil(w / 8) + (x >> 3)]! |= v << (7 - (x & 7));
    });
    const { image } = await decodeImage(encodePng({ width: w, height: h, channels: 1, depth: 1, data: packed }), limits);
    expect(image.channels).toBe(1);
    expect(Array.from(image.data)).toEqual(values.map((v) => v * 255));

    const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 37) % 256);
    const decoded = (await decodeImage(encodePng({ width: w, height: h, channels: 3, depth: 8, data: rgb }), limits)).image;
    expect(decoded.channels).toBe(3);
    expect(Array.from(decoded.data)).toEqual(Array.from(rgb));
  });

  it("makes a grey or RGB image's tRNS colour transparent", async () => {
    const grey = withTrns(encodePng({ width: 3, height: 1, channels: 1, depth: 8, data: new Uint8Array([10, 50, 90]) }), [0, 50]);
    expect(Array.from((await decodeImage(grey, limits)).image.data)).toEqual([10, 0, 90]);
    const pixels = [1, 2, 3, 4, 5, 6, 4, 5, 7, 4, 5, 6];
    const rgb = withTrns(encodePng({ width: 2, height: 2, channels: 3, depth: 8, data: Uint8Array.from(pixels) }), [0, 4, 0, 5, 0, 6]);
    expect(Array.from((await decodeImage(rgb, limits)).image.data)).toEqual([1, 2, 3, 0, 0, 0, 4, 5, 7, 0, 0, 0]);
  });

  it("applies a palette's transparency", async () => {
    const png = encodePng({ width: 2, height: 1, channels: 1, depth: 8, palette: [[200, 100, 50, 0], [200, 100, 50, 255]], data: new Uint8Array([1, 0]) });
    expect(Array.from((await decodeImage(png, limits)).image.data)).toEqual([200, 100, 50, 0, 0, 0]);
  });

  it("decodes a one-component JPEG exactly and a colour one closely", async () => {
    const value = (bx: number, by: number) => (37 * bx + 71 * by + 20) % 256;
    const { image, format } = await decodeImage(encodeFlatGreyJpeg(33, 17, value), limits);
    expect(format).toBe("jpeg");
    for (let y = 0; y < 17; y++) for (let x = 0; x < 33; x++) expect(image.data[(y * 33 + x) * 3]).toBe(value(x >> 3, y >> 3));
    const colour = (await decodeImage(jpegs["uniform-rgb"]!, limits)).image;
    for (let i = 0; i < colour.data.length; i += 3) {
      expect(Math.abs(colour.data[i]! - 200)).toBeLessThanOrEqual(3);
      expect(Math.abs(colour.data[i + 1]! - 100)).toBeLessThanOrEqual(3);
      expect(Math.abs(colour.data[i + 2]! - 50)).toBeLessThanOrEqual(3);
    }
  });
});

describe("EXIF orientation", () => {
  it("turns a JPEG as its tag says", async () => {
    // 24x16 source in 8x8 blocks: corners top-left 20, top-right 100, bottom-left 120, bottom-right 200.
    const src = { tl: 20, tr: 100, bl: 120, br: 200 };
    // Display corners (top-left, top-right, bottom-left) by orientation, from the EXIF definitions.
    const expected: Record<number, [number, number, number]> = {
      1: [src.tl, src.tr, src.bl],
      2: [src.tr, src.tl, src.br],
      3: [src.br, src.bl, src.tr],
      4: [src.bl, src.br, src.tl],
      5: [src.tl, src.bl, src.tr],
      6: [src.bl, src.tl, src.br],
      7: [src.br, src.tr, src.bl],
      8: [src.tr, src.br, src.tl],
    };
    for (const [o, [tl, tr, bl]] of Object.entries(expected)) {
      const jpeg = encodeFlatGreyJpeg(24, 16, (bx, by) => 20 + 40 * bx + 100 * by, Number(o));
      const { image } = await decodeImage(jpeg, limits);
      const swapped = Number(o) >= 5;
      expect([image.width, image.height], `orientation ${o}`).toEqual(swapped ? [16, 24] : [24, 16]);
      const at = (x: number, y: number) => image.data[(y * image.width + x) * 3];
      expect([at(0, 0), at(image.width - 1, 0), at(0, image.height - 1)], `orientation ${o}`).toEqual([tl, tr, bl]);
    }
  });
});

describe("readHeader", () => {
  it("reads PNG and JPEG dimensions without decoding", () => {
    expect(readHeader(encodePng({ width: 7, height: 3, channels: 1, depth: 8, data: new Uint8Array(21) }), limits)).toEqual({ format: "png", width: 7, height: 3 });
    expect(readHeader(jpegs.gradient!, limits)).toEqual({ format: "jpeg", width: 64, height: 48 });
  });
});

describe("resize", () => {
  it("keeps a flat image flat at any size", () => {
    const out = resize(new Uint8Array(50 * 30).fill(77), 50, 30, 1, 7, 11);
    expect(out).toHaveLength(77);
    for (const v of out) expect(v).toBeCloseTo(77, 4);
  });

  it("is the identity at the same size", () => {
    const src = Uint8Array.from({ length: 6 * 4 * 3 }, (_, i) => (i * 29) % 256);
    expect(Array.from(resize(src, 6, 4, 3, 6, 4)).map((v) => Math.round(v * 1e4) / 1e4)).toEqual(Array.from(src));
  });

  it("averages every source pixel when shrinking (antialiased) and keeps mirror symmetry", () => {
    // A one-pixel-wide line on every 4th column vanishes under point sampling; here it greys the output.
    const w = 64;
    const src = Uint8Array.from({ length: w * 8 }, (_, i) => (i % w) % 4 === 1 ? 255 : 0);
    const out = resize(src, w, 8, 1, 8, 1);
    for (const v of out) expect(Math.abs(v - 255 / 4)).toBeLessThan(4); // the triangle's phase, not a box

    const ramp = Uint8Array.from({ length: 20 }, (_, i) => Math.min(i, 19 - i) * 10);
    const r = resize(ramp, 20, 1, 1, 6, 1);
    for (let i = 0; i < 3; i++) expect(r[i]).toBeCloseTo(r[5 - i]!, 4);
  });
});
