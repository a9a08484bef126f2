// A tiny baseline greyscale JPEG writer for tests (jpeg-js only writes colour JPEGs). Each 8x8 block
// is flat, so only DC coefficients are coded (quantizer 1, every AC run ends at once): decoding gives
// the block values back exactly, which lets tests check a 1-component JPEG pixel for pixel.

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
  const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0, 0, 0];
  return [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
}

/**
 * blockValue(bx, by) is the grey level (0-255) of block column bx, row by; `orientation` (1-8) adds
 * an EXIF orientation tag.
 */
export function encodeFlatGreyJpeg(width: number, height: number, blockValue: (bx: number, by: number) => number, orientation?: number): Uint8Array {
  const out: number[] = [];
  const u16 = (v: number) => out.push(v >> 8, v & 0xff);
  const segment = (marker: number, body: number[]) => {
    out.push(0xff, marker);
    u16(body.length + 2);
    out.push(...body);
  };
  out.push(0xff, 0xd8);
  if (orientation !== undefined) segment(0xe1, exifOrientationSegment(orientation));
  segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]);
  segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]);
  segment(0xc4, [0x00, ...DC_BITS, ...DC_VALUES]);
  segment(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0x00]); // AC: only end-of-block, code "0"
  segment(0xda, [1, 1, 0x00, 0, 63, 0]);

  const dc = huffman(DC_BITS, DC_VALUES);
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
  let previous = 0;
  for (let by = 0; by < Math.ceil(height / 8); by++) {
    for (let bx = 0; bx < Math.ceil(width / 8); bx++) {
      const coefficient = 8 * (blockValue(bx, by) - 128); // DC of a flat level-shifted block
      const diff = coefficient - previous;
      previous = coefficient;
      const category = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
      const [code, length] = dc.get(category)!;
      put(code, length);
      if (category > 0) put(diff > 0 ? diff : diff + (1 << category) - 1, category);
      put(0, 1); // end of block
    }
  }
  if (nbits > 0) put((1 << (8 - nbits)) - 1, 8 - nbits); // pad with ones
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}
