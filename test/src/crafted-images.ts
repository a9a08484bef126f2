// Hostile images, generated in code (nothing binary is committed): each is small on the wire and has
// honest dimensions, but a decoder that trusts it spends far more memory or time than its pixels are
// worth. Pure JS, so the same bytes are built in workerd (image.test.ts), in Node driving workerd
// (memory.node.test.ts) and in training's tests.
import { encodeFlatJpeg } from "./flat-jpeg.ts";

/** CRC-32 as PNG chunks use it. */
export function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One PNG chunk: length, type, body, CRC. */
export function pngChunk(type: string, body: ArrayLike<number>): Uint8Array {
  const chunk = new Uint8Array(12 + body.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) chunk[4 + i] = type.charCodeAt(i);
  chunk.set(body, 8);
  view.setUint32(8 + body.length, crc32(chunk.subarray(4, 8 + body.length)));
  return chunk;
}

/** The PNG signature and these chunks. */
export function pngFile(chunks: readonly Uint8Array[]): Uint8Array {
  return concat([Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks]);
}

/** An IHDR chunk (8 bits per sample unless given; colour type 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). */
export function ihdr(width: number, height: number, colourType = 0, depth = 8): Uint8Array {
  const body = new Uint8Array(13);
  const view = new DataView(body.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  body[8] = depth;
  body[9] = colourType;
  return pngChunk("IHDR", body);
}

/** Writes bits LSB first, as deflate packs them; Huffman codes go in most significant bit first. */
class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private n = 0;
  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) this.bit((value >> i) & 1);
  }
  code(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) this.bit((code >> i) & 1);
  }
  private bit(b: number): void {
    this.acc |= b << this.n;
    if (++this.n === 8) {
      this.bytes.push(this.acc);
      this.acc = 0;
      this.n = 0;
    }
  }
  finish(): Uint8Array {
    if (this.n > 0) this.bytes.push(this.acc);
    return Uint8Array.from(this.bytes);
  }
}

/**
 * A zlib stream of `count` zero bytes at deflate's densest (1032:1): one dynamic-Huffman block whose
 * codes are a literal 0 (2 bits), "length 258" (1 bit) and "distance 1" (1 bit).
 */
export function zlibZeros(count: number): Uint8Array {
  const w = new BitWriter();
  w.bits(1, 1); // final block
  w.bits(2, 2); // dynamic Huffman
  w.bits(286 - 257, 5); // HLIT: literal/length codes 0-285
  w.bits(0, 5); // HDIST: one distance code
  w.bits(18 - 4, 4); // HCLEN: 18 code-length code lengths, in the order below
  // Code-length alphabet order 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1: 18 gets 1 bit, 2 and 1 get 2.
  for (const length of [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2]) w.bits(length, 3);
  // Canonical codes: 18 = 0, 1 = 10, 2 = 11. Literal/length lengths: 0 -> 2, 256 -> 2, 285 -> 1; distance 0 -> 1.
  const zeros = (n: number) => {
    w.code(0, 1);
    w.bits(n - 11, 7);
  };
  w.code(3, 2); // symbol 0: length 2
  zeros(138);
  zeros(117); // symbols 1-255: unused
  w.code(3, 2); // 256 (end of block): length 2
  zeros(28); // 257-284: unused
  w.code(2, 2); // 285 (length 258): length 1
  w.code(2, 2); // distance 0: length 1
  // Canonical literal/length codes: 285 = 0, 0 = 10, 256 = 11.
  const matches = count > 0 ? Math.floor((count - 1) / 258) : 0;
  const literals = count - matches * 258;
  if (count > 0) w.code(2, 2);
  for (let i = 0; i < matches; i++) w.code(0, 2); // length 258 (0), distance 1 (0)
  for (let i = 1; i < literals; i++) w.code(2, 2);
  w.code(3, 2); // end of block
  const b = count % 65521; // Adler-32 of zeros: a stays 1, b gains 1 a byte
  const adler = [(b >> 8) & 0xff, b & 0xff, 0, 1];
  return concat([Uint8Array.from([0x78, 0x01]), w.finish(), Uint8Array.from(adler)]);
}

/** A black 8x8 grey PNG's image data. */
const smallImage = () => [ihdr(8, 8), pngChunk("IDAT", zlibZeros(8 * 9))];
const iend = () => pngChunk("IEND", []);

export interface CraftedImage {
  name: string;
  bytes: Uint8Array;
  /** What the decoder must answer, and words its message must hold. */
  status: number;
  reason: RegExp;
}

/** A 8x8 PNG whose colour profile (iCCP) inflates to `inflated` bytes: about 194 KB on the wire for 200 MB. */
export function iccpBomb(inflated = 200_000_000): CraftedImage {
  const [header, data] = smallImage();
  const body = concat([new TextEncoder().encode("ICC profile\0\0"), zlibZeros(inflated)]);
  return {
    name: "iCCP inflating to 200 MB",
    bytes: pngFile([header!, pngChunk("iCCP", body), data!, iend()]),
    status: 413,
    reason: /iCCP chunk inflates beyond/,
  };
}

/** A 8x8 PNG with a second IHDR claiming 12000x12000 RGBA (a decoder sizing its output from it allocates 576 MB). */
export function secondIhdr(): CraftedImage {
  const [header, data] = smallImage();
  return {
    name: "second IHDR claiming 12000x12000 RGBA",
    bytes: pngFile([header!, ihdr(12000, 12000, 6), data!, iend()]),
    status: 400,
    reason: /second IHDR/,
  };
}

/** A 8x8 PNG with `count` tiny text chunks (15 bytes each). */
export function textChunks(count = 150_000): CraftedImage {
  const [header, data] = smallImage();
  const text = pngChunk("tEXt", [0x6b, 0, 0x76]); // "k" = "v"
  const chunks = new Array<Uint8Array>(count).fill(text);
  return {
    name: `${count} text chunks`,
    bytes: pngFile([header!, ...chunks, data!, iend()]),
    status: 400,
    reason: /more than \d+ chunks/,
  };
}

/**
 * A progressive grey JPEG with `scans` AC scans on top of its own two (DC, AC), each a full pass over the
 * image's blocks (every block's band empty). 8x8 by default: 11 bytes a scan.
 */
export function manyScansJpeg(scans = 156_000, width = 8, height = 8): CraftedImage {
  const base = encodeFlatJpeg({ width, height, progressive: true, blockValue: () => 128 });
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  // Each block: end-of-band code "0"; the last byte padded with ones.
  const data = new Uint8Array(Math.ceil(blocks / 8));
  if (blocks % 8) data[data.length - 1] = 0xff >> (blocks % 8);
  const scan = concat([Uint8Array.from([0xff, 0xda, 0, 8, 1, 1, 0x00, 1, 63, 0]), data]);
  const eoi = base.length - 2;
  return {
    name: `${scans} scans`,
    bytes: concat([base.subarray(0, eoi), ...new Array<Uint8Array>(scans).fill(scan), base.subarray(eoi)]),
    status: 400,
    reason: /more than \d+ scans/,
  };
}

/** The crafted files the decoder must refuse quickly, with bounded memory. */
export function craftedImages(): CraftedImage[] {
  return [iccpBomb(), secondIhdr(), textChunks(), manyScansJpeg()];
}
