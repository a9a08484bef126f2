// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), plain or gzip:
// a big-endian header (two zero bytes, a type code, the number of dimensions, then each dimension as
// a uint32) followed by the data. Only unsigned bytes (type 0x08) occur in these data sets.
import { readFileOrExplain } from "../io/read.ts";
import { gunzipSync } from "node:zlib";
import { DataError } from "./dataset.ts";

const UBYTE = 0x08;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads a file, gunzipping it when it starts with the gzip magic. */
export function readMaybeGzip(path: string): Uint8Array {
  const raw = readFileOrExplain(path, "file", (m) => new DataError(m));
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (err) {
      throw new DataError(`${path}: broken gzip data (${(err as Error).message})`);
    }
  }
  return raw;
}

export function parseIdx(bytes: Uint8Array, path: string): IdxArray {
  if (bytes.length < 4) throw new DataError(`${path}: truncated IDX file (${bytes.length} bytes, no header)`);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new DataError(
      `${path}: not an IDX file (bad magic ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("")})`,
    );
  if (bytes[2] !== UBYTE)
    throw new DataError(
      `${path}: IDX data type 0x${bytes[2]!.toString(16)} is not supported (expected 0x08, unsigned bytes)`,
    );
  const ndims = bytes[3]!;
  const headerLength = 4 + 4 * ndims;
  if (bytes.length < headerLength) throw new DataError(`${path}: truncated IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual < expected)
    throw new DataError(
      `${path}: truncated: header promises ${expected} bytes of data for [${dims.join(", ")}], file has ${actual}`,
    );
  if (actual > expected)
    throw new DataError(`${path}: ${actual - expected} unexpected bytes after the data for [${dims.join(", ")}]`);
  return { dims, data: bytes.subarray(headerLength) };
}

export function readIdx(path: string): IdxArray {
  return parseIdx(readMaybeGzip(path), path);
}
