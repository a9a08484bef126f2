// A JPEG's marker segments, walked without decoding: the header reads the frame size from the first
// frame segment, and the whole walk counts what the decoder (jpeg-js) would loop over, because its
// time grows with each scan (a pass over every block of the image) and each table it builds.
import { ImageError } from "./errors.ts";

/** Scans one image may have (libjpeg's progressive JPEGs have 6 to 10; a scan costs a pass over the image). */
export const JPEG_MAX_SCANS = 100;
/** Marker segments other than scans (APPn, COM, DQT, DHT, DRI, SOF, ...). */
export const JPEG_MAX_SEGMENTS = 1024;
/** Huffman and quantization tables defined in all (each is built when defined; libjpeg writes 2 per scan at most). */
export const JPEG_MAX_TABLES = 256;

export const undecodableJpeg = (why: string) => new ImageError(400, `cannot decode the JPEG image: ${why}`);

export interface JpegSegment {
  marker: number;
  /** Byte offset of the marker. */
  at: number;
  /** The segment's bytes after its length field. */
  body: Uint8Array;
}

const isFrame = (marker: number) =>
  marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
const isRestart = (marker: number) => marker >= 0xd0 && marker <= 0xd7;

/** The segments from SOI on, scan data skipped, up to EOI or the end of the bytes (400 for bytes that are no marker). */
export function* jpegSegments(b: Uint8Array): Generator<JpegSegment> {
  let at = 2;
  while (at + 2 <= b.length) {
    if (b[at] !== 0xff) throw undecodableJpeg(`expected a marker at byte ${at}`);
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || isRestart(marker) || marker === 0xd8) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9) return; // end of image
    if (at + 4 > b.length) throw undecodableJpeg(`the file ends inside a segment header at byte ${at} (truncated?)`);
    const length = (b[at + 2]! << 8) | b[at + 3]!;
    if (length < 2 || at + 2 + length > b.length)
      throw undecodableJpeg(
        `the segment ${marker.toString(16).toUpperCase()} at byte ${at} runs past the end of the file (truncated?)`,
      );
    yield { marker, at, body: b.subarray(at + 4, at + 2 + length) };
    at += 2 + length;
    if (marker !== 0xda) continue;
    // Entropy-coded data: 0xFF is followed by 0 (a stuffed byte), a restart marker or 0xFF (fill) inside it.
    for (;;) {
      at = b.indexOf(0xff, at);
      if (at < 0 || at + 1 >= b.length) return;
      const next = b[at + 1]!;
      if (next === 0 || isRestart(next)) at += 2;
      else if (next === 0xff) at += 1;
      else break;
    }
  }
}

/** Width and height from the first frame segment. */
export function jpegFrameSize(b: Uint8Array): [number, number] {
  for (const { marker, body } of jpegSegments(b)) {
    if (isFrame(marker)) {
      if (body.length < 5) break;
      return [(body[3]! << 8) | body[4]!, (body[1]! << 8) | body[2]!];
    }
    if (marker === 0xda) break; // scan data before any frame header
  }
  throw undecodableJpeg("no frame header");
}

/** Tables a DHT or DQT segment defines (each entry's size from its own header; a short last one counts too). */
function tableCount(marker: number, body: Uint8Array): number {
  let n = 0;
  for (let at = 0; at < body.length; n++) {
    if (marker === 0xdb) at += 1 + (body[at]! >> 4 ? 128 : 64);
    else at += 17 + body.subarray(at + 1, at + 17).reduce((s, v) => s + v, 0);
  }
  return n;
}

/** Walks every segment and refuses (400) a file with more scans, segments, tables or frames than the limits. */
export function checkJpegSegments(b: Uint8Array): void {
  let scans = 0;
  let segments = 0;
  let tables = 0;
  let frames = 0;
  for (const { marker, at, body } of jpegSegments(b)) {
    if (marker === 0xda) {
      if (++scans > JPEG_MAX_SCANS) throw undecodableJpeg(`more than ${JPEG_MAX_SCANS} scans`);
      continue;
    }
    if (++segments > JPEG_MAX_SEGMENTS) throw undecodableJpeg(`more than ${JPEG_MAX_SEGMENTS} marker segments`);
    if (isFrame(marker) && ++frames > 1) throw undecodableJpeg(`a second frame header at byte ${at} (a JPEG has one)`);
    if (marker === 0xc4 || marker === 0xdb) {
      tables += tableCount(marker, body);
      if (tables > JPEG_MAX_TABLES)
        throw undecodableJpeg(`more than ${JPEG_MAX_TABLES} Huffman and quantization tables`);
    }
  }
}
