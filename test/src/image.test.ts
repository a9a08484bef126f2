// The image pipeline on its own: headers, decoding, resizing.
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../models/image/decode.ts";
import { readHeader } from "../../models/image/header.ts";
import { JPEG_MAX_SCANS, JPEG_MAX_SEGMENTS, JPEG_MAX_TABLES } from "../../models/image/jpeg-segments.ts";
import { PNG_MAX_COMPRESSED_CHUNKS } from "../../models/image/png-chunks.ts";
import { PNG_MAX_ANCILLARY_INFLATED } from "../../models/image/png.ts";
import { resize } from "../../models/image/resize.ts";
import { craftedImages, ihdr, manyScansJpeg, pngChunk, pngFile, zlibZeros } from "./crafted-images.ts";
import { encodeFlatGreyJpeg } from "./flat-jpeg.ts";
import { jpegs } from "./fixtures.ts";

const limits = { maxSide: 4096, maxPixels: 4096 * 1024, maxJpegDecoderBytes: 128 << 20 };

/** The PNG with a tRNS chunk (the encoder writes none for grey or RGB) right after IHDR. */
function withTrns(png: Uint8Array, body: number[]): Uint8Array {
  const chunk = pngChunk("tRNS", body);
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
    const { image } = await decodeImage(
      encodePng({ width: w, height: h, channels: 1, depth: 1, data: packed }),
      limits,
    );
    expect(image.channels).toBe(1);
    expect(Array.from(image.data)).toEqual(values.map((v) => v * 255));

    const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 37) % 256);
    const decoded = (await decodeImage(encodePng({ width: w, height: h, channels: 3, depth: 8, data: rgb }), limits))
      .image;
    expect(decoded.channels).toBe(3);
    expect(Array.from(decoded.data)).toEqual(Array.from(rgb));
  });

  it("makes a grey or RGB image's tRNS colour transparent", async () => {
    const grey = withTrns(
      encodePng({ width: 3, height: 1, channels: 1, depth: 8, data: new Uint8Array([10, 50, 90]) }),
      [0, 50],
    );
    expect(Array.from((await decodeImage(grey, limits)).image.data)).toEqual([10, 0, 90]);
    const pixels = [1, 2, 3, 4, 5, 6, 4, 5, 7, 4, 5, 6];
    const rgb = withTrns(
      encodePng({ width: 2, height: 2, channels: 3, depth: 8, data: Uint8Array.from(pixels) }),
      [0, 4, 0, 5, 0, 6],
    );
    expect(Array.from((await decodeImage(rgb, limits)).image.data)).toEqual([1, 2, 3, 0, 0, 0, 4, 5, 7, 0, 0, 0]);
  });

  it("applies a palette's transparency", async () => {
    const png = encodePng({
      width: 2,
      height: 1,
      channels: 1,
      depth: 8,
      palette: [
        [200, 100, 50, 0],
        [200, 100, 50, 255],
      ],
      data: new Uint8Array([1, 0]),
    });
    expect(Array.from((await decodeImage(png, limits)).image.data)).toEqual([200, 100, 50, 0, 0, 0]);
  });

  it("decodes a one-component JPEG exactly and a colour one closely", async () => {
    const value = (bx: number, by: number) => (37 * bx + 71 * by + 20) % 256;
    const { image, format } = await decodeImage(encodeFlatGreyJpeg(33, 17, value), limits);
    expect(format).toBe("jpeg");
    for (let y = 0; y < 17; y++)
      for (let x = 0; x < 33; x++) expect(image.data[(y * 33 + x) * 3]).toBe(value(x >> 3, y >> 3));
    const colour = (await decodeImage(jpegs["uniform-rgb"]!, limits)).image;
    for (let i = 0; i < colour.data.length; i += 3) {
      expect(Math.abs(colour.data[i]! - 200)).toBeLessThanOrEqual(3);
      expect(Math.abs(colour.data[i + 1]! - 100)).toBeLessThanOrEqual(3);
      expect(Math.abs(colour.data[i + 2]! - 50)).toBeLessThanOrEqual(3);
    }
  });
});

/** A PNG's chunks, split after the signature (each with its length, type and CRC). */
function chunksOf(png: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 8; at < png.length; ) {
    const end = at + 12 + new DataView(png.buffer, png.byteOffset).getUint32(at);
    chunks.push(png.subarray(at, end));
    at = end;
  }
  return chunks;
}

const typeOf = (chunk: Uint8Array) => String.fromCharCode(...chunk.subarray(4, 8));
const latin1 = (text: string) => Array.from(text, (c) => c.charCodeAt(0));

async function refusal(bytes: Uint8Array): Promise<{ status: number; message: string }> {
  try {
    await decodeImage(bytes, limits);
  } catch (err) {
    return { status: (err as { status: number }).status, message: (err as Error).message };
  }
  throw new Error("the image decoded");
}

describe("hostile images", () => {
  // An 8-bit RGB PNG of 40x30 whose image data spans several IDAT chunks.
  const rgb = Uint8Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 7919) % 251);
  const plain = encodePng({ width: 40, height: 30, channels: 3, depth: 8, data: rgb });
  const [header, ...rest] = chunksOf(plain);
  const data = rest.filter((c) => typeOf(c) === "IDAT");
  const end = rest.at(-1)!;
  const split = (idat: Uint8Array, parts: number) => {
    const body = idat.subarray(8, idat.length - 4);
    const size = Math.ceil(body.length / parts);
    return Array.from({ length: parts }, (_, i) => pngChunk("IDAT", body.subarray(i * size, (i + 1) * size)));
  };
  const pixelsOf = async (png: Uint8Array) => Array.from((await decodeImage(png, limits)).image.data);

  it("refuses each crafted file with the reason", async () => {
    for (const crafted of craftedImages()) {
      const { status, message } = await refusal(crafted.bytes);
      expect(status, crafted.name).toBe(crafted.status);
      expect(message, crafted.name).toMatch(crafted.reason);
    }
  });

  it("drops ancillary chunks, compressed ones inflating within the cap included, and decodes the same pixels", async () => {
    const profile = pngChunk("iCCP", [...latin1("ICC profile\0\0"), ...zlibZeros(3144)]);
    const ztxt = pngChunk("zTXt", [...latin1("Comment\0\0"), ...zlibZeros(100)]);
    const itxt = pngChunk("iTXt", [
      ...latin1("XML:com.adobe.xmp\0\x01\0en\0\0"),
      ...zlibZeros(PNG_MAX_ANCILLARY_INFLATED - 3244),
    ]);
    const text = pngChunk("tEXt", latin1("Software\0test"));
    const busy = pngFile([header!, profile, ztxt, ...split(data[0]!, 5), itxt, text, pngChunk("prVt", [1, 2, 3]), end]);
    expect(await pixelsOf(busy)).toEqual(Array.from(rgb));
    // One byte more, in any of them, is over the cap.
    const over = pngFile([
      header!,
      profile,
      ztxt,
      data[0]!,
      pngChunk("iTXt", [...latin1("XML:com.adobe.xmp\0\x01\0en\0\0"), ...zlibZeros(PNG_MAX_ANCILLARY_INFLATED - 3243)]),
      end,
    ]);
    expect(await refusal(over)).toMatchObject({
      status: 413,
      message: expect.stringMatching(/iTXt chunk inflates beyond 1048576 bytes/),
    });
    const ztxtBomb = pngFile([
      header!,
      pngChunk("zTXt", [...latin1("k\0\0"), ...zlibZeros(50_000_000)]),
      data[0]!,
      end,
    ]);
    expect(await refusal(ztxtBomb)).toMatchObject({
      status: 413,
      message: expect.stringMatching(/zTXt chunk inflates beyond/),
    });
    const many = Array.from({ length: PNG_MAX_COMPRESSED_CHUNKS + 1 }, () => ztxt);
    expect(await refusal(pngFile([header!, ...many, data[0]!, end]))).toMatchObject({
      status: 400,
      message: expect.stringMatching(/more than 64 compressed ancillary chunks/),
    });
  });

  it("refuses a structure the decoder could be steered by (400)", async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "chunks after IEND",
        pngFile([header!, data[0]!, end, pngChunk("tEXt", latin1("k\0v"))]),
        /\d+ bytes after the IEND chunk/,
      ],
      [
        "IDAT chunks with a chunk between them",
        pngFile([
          header!,
          ...split(data[0]!, 2).flatMap((c, i) => (i ? [pngChunk("tEXt", latin1("k\0v")), c] : [c])),
          end,
        ]),
        /IDAT chunks are not contiguous/,
      ],
      ["no IEND", pngFile([header!, data[0]!]), /no IEND chunk/],
      [
        "a chunk running past the end",
        pngFile([header!, data[0]!.subarray(0, 20)]),
        /IDAT chunk at byte 33 runs past the end/,
      ],
      ["no IDAT", pngFile([header!, end]), /no IDAT chunk/],
      [
        "an unknown critical chunk",
        pngFile([header!, pngChunk("ABCD", []), data[0]!, end]),
        /unknown critical chunk ABCD/,
      ],
      ["a chunk before IHDR", pngFile([pngChunk("tEXt", latin1("k\0v")), header!, data[0]!, end]), /no IHDR chunk/],
      ["a depth PNG does not define", pngFile([ihdr(40, 30, 2, 4), data[0]!, end]), /colour type 2 at 4 bits/],
      ["a palette image without PLTE", pngFile([ihdr(40, 30, 3), data[0]!, end]), /without a PLTE/],
      [
        "PLTE after IDAT",
        pngFile([ihdr(40, 30, 3), data[0]!, pngChunk("PLTE", [0, 0, 0]), end]),
        /PLTE after the image data/,
      ],
    ];
    for (const [name, png, reason] of cases)
      expect(await refusal(png), name).toMatchObject({ status: 400, message: expect.stringMatching(reason) });
  });

  it("keeps the decoder's CRC check on the chunks it is given", async () => {
    const corrupt = pngFile([header!, data[0]!, end]);
    const crcByte = 8 + header!.length + data[0]!.length - 1; // the IDAT's CRC
    corrupt[crcByte] = corrupt[crcByte]! ^ 0xff;
    expect(await refusal(corrupt)).toMatchObject({
      status: 400,
      message: expect.stringMatching(/CRC mismatch for chunk IDAT/),
    });
  });

  it("takes IDAT split into many chunks, up to the cap (256 plus one per 4 KiB of file)", async () => {
    expect(await pixelsOf(pngFile([header!, ...split(data[0]!, 250), end]))).toEqual(Array.from(rgb));
    expect(await refusal(pngFile([header!, ...split(data[0]!, 300), end]))).toMatchObject({
      status: 400,
      message: expect.stringMatching(/more than 2\d\d chunks/),
    });
  });

  it("counts a JPEG's scans, segments and tables before decoding", async () => {
    // manyScansJpeg's base has two scans of its own.
    expect((await decodeImage(manyScansJpeg(JPEG_MAX_SCANS - 2).bytes, limits)).image.width).toBe(8);
    expect(await refusal(manyScansJpeg(JPEG_MAX_SCANS - 1).bytes)).toMatchObject({
      status: 400,
      message: expect.stringMatching(/more than 100 scans/),
    });
    const jpeg = encodeFlatGreyJpeg(16, 8, () => 100);
    const withSegments = (segment: number[], count: number) =>
      Uint8Array.from([0xff, 0xd8, ...new Array<number[]>(count).fill(segment).flat(), ...jpeg.subarray(2)]);
    const comment = [0xff, 0xfe, 0, 3, 0x21];
    expect((await decodeImage(withSegments(comment, JPEG_MAX_SEGMENTS - 5), limits)).image.width).toBe(16);
    expect(await refusal(withSegments(comment, JPEG_MAX_SEGMENTS))).toMatchObject({
      status: 400,
      message: expect.stringMatching(/more than 1024 marker segments/),
    });
    // One DHT segment defining 300 empty tables.
    const emptyTable = [0x10, ...new Array<number>(16).fill(0)];
    const tables = [
      0xff,
      0xc4,
      ((2 + 17 * 300) >> 8) & 0xff,
      (2 + 17 * 300) & 0xff,
      ...new Array<number[]>(300).fill(emptyTable).flat(),
    ];
    expect(await refusal(withSegments(tables, 1))).toMatchObject({
      status: 400,
      message: expect.stringMatching(new RegExp(`more than ${JPEG_MAX_TABLES} Huffman`)),
    });
    const sof = jpeg.indexOf(0xc0);
    const frame = Array.from(jpeg.subarray(sof - 1, sof + 1 + ((jpeg[sof + 1]! << 8) | jpeg[sof + 2]!)));
    expect(await refusal(withSegments(frame, 1))).toMatchObject({
      status: 400,
      message: expect.stringMatching(/a second frame header/),
    });
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
    expect(
      readHeader(encodePng({ width: 7, height: 3, channels: 1, depth: 8, data: new Uint8Array(21) }), limits),
    ).toEqual({ format: "png", width: 7, height: 3 });
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
    const src = Uint8Array.from({ length: w * 8 }, (_, i) => ((i % w) % 4 === 1 ? 255 : 0));
    const out = resize(src, w, 8, 1, 8, 1);
    for (const v of out) expect(Math.abs(v - 255 / 4)).toBeLessThan(4); // the triangle's phase, not a box

    const ramp = Uint8Array.from({ length: 20 }, (_, i) => Math.min(i, 19 - i) * 10);
    const r = resize(ramp, 20, 1, 1, 6, 1);
    for (let i = 0; i < 3; i++) expect(r[i]).toBeCloseTo(r[5 - i]!, 4);
  });
});
