// A PNG's chunks, walked and checked before any pixel is decoded. The decoder (fast-png) trusts the
// file: it inflates iCCP whole, parses every text chunk, and sizes its output from the *last* IHDR.
// So it is handed only what this walk has validated: the signature, the one IHDR, PLTE, tRNS, the
// IDAT run and IEND, byte for byte (their CRCs intact, for it to check). Every other chunk is
// dropped; the compressed ones (iCCP, zTXt, iTXt) are first measured under a cap (png.ts).
import { ImageError } from "./errors.ts";

/**
 * Chunks a file may have: 256 plus one per 4 KiB of file (encoders write IDATs of 8 KiB or more). The
 * decoder's time grows with the count: each IDAT is a push into its inflater.
 */
export const PNG_CHUNKS_BASE = 256;
export const PNG_BYTES_PER_EXTRA_CHUNK = 4096;
/** Compressed ancillary chunks (iCCP, zTXt, compressed iTXt) a file may have. */
export const PNG_MAX_COMPRESSED_CHUNKS = 64;

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Allowed bit depths per colour type (PNG spec, table 11.1). */
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Chunks the decoder is given; the rest of the file is dropped. */
const KEPT = new Set(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"]);

const be32 = (b: Uint8Array, at: number) =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

export const undecodablePng = (why: string) => new ImageError(400, `cannot decode the PNG image: ${why}`);

export interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colourType: number;
  channels: number;
  interlaced: boolean;
}

export interface PngChunks {
  header: PngHeader;
  /** The IDAT bodies, in order (one zlib stream). */
  data: Uint8Array[];
  /** Each compressed ancillary chunk's zlib stream, with its chunk type. */
  compressed: { type: string; stream: Uint8Array }[];
  /** Signature and the kept chunks, verbatim: what the decoder is given. */
  decodable: Uint8Array;
}

function readHeaderChunk(body: Uint8Array): PngHeader {
  const [depth, colourType, compression, filter, interlace] = body.subarray(8);
  const width = be32(body, 0);
  const height = be32(body, 4);
  if (width === 0 || height === 0 || width > 2 ** 31 - 1 || height > 2 ** 31 - 1)
    throw undecodablePng(`IHDR claims ${width}x${height} pixels`);
  if (!DEPTHS[colourType!]?.includes(depth!))
    throw undecodablePng(`IHDR has colour type ${colourType} at ${depth} bits, which PNG does not define`);
  if (compression !== 0 || filter !== 0 || (interlace !== 0 && interlace !== 1))
    throw undecodablePng(
      `IHDR has compression ${compression}, filter ${filter}, interlace ${interlace} (PNG defines 0, 0, 0 or 1)`,
    );
  return {
    width,
    height,
    depth: depth!,
    colourType: colourType!,
    channels: CHANNELS[colourType!]!,
    interlaced: interlace === 1,
  };
}

/** The zlib stream of an iCCP, zTXt or compressed iTXt body; undefined when it holds none (or is malformed, which is harmless once dropped). */
function compressedStream(type: string, body: Uint8Array): Uint8Array | undefined {
  const keywordEnd = body.indexOf(0);
  if (keywordEnd < 1 || keywordEnd > 79) return undefined;
  if (type !== "iTXt") return body[keywordEnd + 1] === 0 ? body.subarray(keywordEnd + 2) : undefined;
  if (body[keywordEnd + 1] !== 1 || body[keywordEnd + 2] !== 0) return undefined;
  const languageEnd = body.indexOf(0, keywordEnd + 3);
  const translatedEnd = languageEnd < 0 ? -1 : body.indexOf(0, languageEnd + 1);
  return translatedEnd < 0 ? undefined : body.subarray(translatedEnd + 1);
}

/** Walks every chunk of a PNG (400 for any structure a decoder could be steered by) and keeps what decoding needs. */
export function walkPng(bytes: Uint8Array): PngChunks {
  if (!SIGNATURE.every((b, i) => bytes[i] === b)) throw undecodablePng("no PNG signature");
  const maxChunks = PNG_CHUNKS_BASE + Math.floor(bytes.length / PNG_BYTES_PER_EXTRA_CHUNK);
  const kept: [number, number][] = [];
  const data: Uint8Array[] = [];
  const compressed: PngChunks["compressed"] = [];
  let header: PngHeader | undefined;
  let palette = false;
  let transparency = false;
  let dataEnded = false;
  let previous = "";
  let count = 0;
  for (let at = 8; ; ) {
    if (at + 12 > bytes.length)
      throw undecodablePng(
        at === bytes.length
          ? "no IEND chunk (truncated?)"
          : `the file ends inside a chunk header at byte ${at} (truncated?)`,
      );
    const length = be32(bytes, at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) throw undecodablePng(`no chunk type at byte ${at + 4}`);
    if (length > bytes.length - at - 12)
      throw undecodablePng(`the ${type} chunk at byte ${at} runs past the end of the file (truncated?)`);
    if (++count > maxChunks)
      throw undecodablePng(
        `more than ${maxChunks} chunks (the limit is ${PNG_CHUNKS_BASE} plus one per ${PNG_BYTES_PER_EXTRA_CHUNK} bytes of file)`,
      );
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (!header && type !== "IHDR") throw undecodablePng(`the first chunk is ${type}, not IHDR`);
    if (previous === "IDAT" && type !== "IDAT") dataEnded = true;
    switch (type) {
      case "IHDR":
        if (header) throw undecodablePng(`a second IHDR chunk at byte ${at} (a PNG has one)`);
        if (length !== 13) throw undecodablePng(`IHDR is ${length} bytes, not 13`);
        header = readHeaderChunk(body);
        break;
      case "PLTE":
        if (palette || data.length) throw undecodablePng(palette ? "a second PLTE chunk" : "PLTE after the image data");
        if (header!.colourType === 0 || header!.colourType === 4) throw undecodablePng("a PLTE chunk in a grey image");
        if (length === 0 || length % 3 !== 0 || length > 3 * 256)
          throw undecodablePng(`PLTE is ${length} bytes (1 to 256 entries of 3)`);
        palette = true;
        break;
      case "tRNS":
        if (transparency || data.length)
          throw undecodablePng(transparency ? "a second tRNS chunk" : "tRNS after the image data");
        transparency = true;
        break;
      case "IDAT":
        if (dataEnded)
          throw undecodablePng(`IDAT chunks are not contiguous (another chunk between them, before byte ${at})`);
        data.push(body);
        break;
      case "IEND":
        break;
      default: {
        if ((bytes[at + 4]! & 0x20) === 0) throw undecodablePng(`unknown critical chunk ${type}`);
        const stream = type === "iCCP" || type === "zTXt" || type === "iTXt" ? compressedStream(type, body) : undefined;
        if (stream) {
          if (compressed.length === PNG_MAX_COMPRESSED_CHUNKS)
            throw undecodablePng(
              `more than ${PNG_MAX_COMPRESSED_CHUNKS} compressed ancillary chunks (iCCP, zTXt, iTXt)`,
            );
          compressed.push({ type, stream });
        }
      }
    }
    if (KEPT.has(type)) kept.push([at, at + 12 + length]);
    previous = type;
    at += 12 + length;
    if (type === "IEND") {
      if (at !== bytes.length) throw undecodablePng(`${bytes.length - at} bytes after the IEND chunk`);
      break;
    }
  }
  if (!data.length) throw undecodablePng("no IDAT chunk");
  if (header!.colourType === 3 && !palette) throw undecodablePng("a palette image without a PLTE chunk");
  return { header: header!, data, compressed, decodable: join(bytes, kept) };
}

/** The signature and the given byte ranges, in one array; the file itself when nothing was left out. */
function join(bytes: Uint8Array, ranges: [number, number][]): Uint8Array {
  const size = 8 + ranges.reduce((n, [from, to]) => n + to - from, 0);
  if (size === bytes.length) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes.subarray(0, 8));
  let at = 8;
  for (const [from, to] of ranges) {
    out.set(bytes.subarray(from, to), at);
    at += to - from;
  }
  return out;
}
