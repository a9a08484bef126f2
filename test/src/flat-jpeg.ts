// A tiny JPEG writer for tests: grey or colour (YCbCr, no subsampling), baseline or progressive
// (jpeg-js writes only baseline colour). Each 8x8 block is flat, so only DC coefficients are coded
// (quantizer 1, every AC run ends at once): decoding gives the block values back exactly, which lets
// tests check a JPEG pixel for pixel, and the file stays small whatever its dimensions.

const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]; // JPEG Annex K.3, luminance DC
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/** Canonical Huffman codes: value -> [code, length]. */
function huffman(bits: number[], values: number[]): Map<number, [number, number]> {
  const codes = new Map<number, [number, number]>();
  let code = 0;
  let k = 0;
  bits.forEach((count, i) => {
    for (let j = 0; j < count; j++) codes.set(values[k++]!, [code++, i + 1]);
    code <<= 1;
  });
  return codes;
}

/** An EXIF APP1 body holding only the orientation tag (big-endian TIFF). */
function exifOrientationSegment(orientation: number): number[] {
  const tiff = [
    0x4d,
    0x4d,
    0,
    42,
    0,
    0,
    0,
    8,
    0,
    1,
    0x01,
    0x12,
    0,
    3,
    0,
    0,
    0,
    1,
    0,
    orientation,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  return [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
}

export interface FlatJpegOptions {
  width: number;
  height: number;
  /** 1 (grey) or 3 (Y, Cb, Cr, each at full resolution). */
  components?: 1 | 3;
  /** Level 0-255 of component c's block at column bx, row by. */
  blockValue: (bx: number, by: number, c: number) => number;
  /** SOF2 with a DC scan and one AC scan per component, instead of baseline's one scan. */
  progressive?: boolean;
  /** An EXIF orientation tag (1-8). */
  orientation?: number;
  /** Pads the file with ignored APP15 segments up to about this many bytes (to test body sizes). */
  padTo?: number;
}

export function encodeFlatJpeg(options: FlatJpegOptions): Uint8Array {
  const { width, height, blockValue } = options;
  const components = options.components ?? 1;
  const ids = components === 1 ? [1] : [1, 2, 3];
  const chunks: Uint8Array[] = [];
  let out: number[] = [];
  const flush = () => {
    chunks.push(Uint8Array.from(out));
    out = [];
  };
  const u16 = (v: number) => out.push(v >> 8, v & 0xff);
  const segment = (marker: number, body: ArrayLike<number>) => {
    out.push(0xff, marker);
    u16(body.length + 2);
    for (let i = 0; i < body.length; i++) out.push(body[i]!);
  };
  if (options.orientation !== undefined) segment(0xe1, exifOrientationSegment(options.orientation));
  segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]);
  segment(options.progressive ? 0xc2 : 0xc0, [
    8,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    components,
    ...ids.flatMap((id) => [id, 0x11, 0]),
  ]);
  segment(0xc4, [0x00, ...DC_BITS, ...DC_VALUES]);
  segment(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0x00]); // AC: only end-of-block, code "0"

  let acc = 0;
  let nbits = 0;
  const put = (code: number, length: number) => {
    for (let i = length - 1; i >= 0; i--) {
      acc = (acc << 1) | ((code >> i) & 1);
      if (++nbits === 8) {
        out.push(acc);
        if (acc === 0xff) out.push(0x00); // byte stuffing
        acc = 0;
        nbits = 0;
      }
    }
  };
  const endScan = () => {
    if (nbits > 0) put((1 << (8 - nbits)) - 1, 8 - nbits); // pad with ones
  };
  const dc = huffman(DC_BITS, DC_VALUES);
  const blocksX = Math.ceil(width / 8);
  const blocksY = Math.ceil(height / 8);
  const previous = ids.map(() => 0);
  const putDc = (bx: number, by: number, c: number) => {
    const coefficient = 8 * (blockValue(bx, by, c) - 128); // DC of a flat level-shifted block
    const diff = coefficient - previous[c]!;
    previous[c] = coefficient;
    const category = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
    const [code, length] = dc.get(category)!;
    put(code, length);
    if (category > 0) put(diff > 0 ? diff : diff + (1 << category) - 1, category);
  };

  if (!options.progressive) {
    segment(0xda, [components, ...ids.flatMap((id) => [id, 0x00]), 0, 63, 0]);
    for (let by = 0; by < blocksY; by++) {
      for (let bx = 0; bx < blocksX; bx++) {
        for (let c = 0; c < components; c++) {
          putDc(bx, by, c);
          put(0, 1); // end of block
        }
      }
      if (out.length > 1 << 16) flush();
    }
    endScan();
  } else {
    // DC of every component, interleaved; then each component's AC band (1-63) on its own.
    segment(0xda, [components, ...ids.flatMap((id) => [id, 0x00]), 0, 0, 0]);
    for (let by = 0; by < blocksY; by++) {
      for (let bx = 0; bx < blocksX; bx++) for (let c = 0; c < components; c++) putDc(bx, by, c);
      if (out.length > 1 << 16) flush();
    }
    endScan();
    for (const id of ids) {
      segment(0xda, [1, id, 0x00, 1, 63, 0]);
      for (let b = 0; b < blocksX * blocksY; b++) {
        put(0, 1); // EOB0: this block's band is all zero
        if (out.length > 1 << 16) flush();
      }
      endScan();
    }
  }
  out.push(0xff, 0xd9);
  flush();
  // SOI, then padding (APP15 segments, which decoders skip), then the image.
  out.push(0xff, 0xd8);
  if (options.padTo !== undefined) {
    const used = chunks.reduce((n, c) => n + c.length, 0) + 2;
    const padding = new Uint8Array(65_533).fill(0x55);
    for (let left = options.padTo - used; left > 4; left -= padding.length + 4)
      segment(0xef, padding.subarray(0, Math.min(padding.length, left - 4)));
  }
  chunks.unshift(Uint8Array.from(out));
  const file = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    file.set(c, at);
    at += c.length;
  }
  return file;
}

/** A baseline grey JPEG of flat blocks; `orientation` (1-8) adds an EXIF orientation tag. */
export function encodeFlatGreyJpeg(
  width: number,
  height: number,
  blockValue: (bx: number, by: number) => number,
  orientation?: number,
): Uint8Array {
  return encodeFlatJpeg({ width, height, blockValue, ...(orientation === undefined ? {} : { orientation }) });
}
