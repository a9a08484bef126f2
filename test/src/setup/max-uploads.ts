// The largest uploads the Worker accepts under given limits, of the kinds that cost the most to
// decode: a 16-bit RGBA PNG and a progressive colour JPEG (no chroma subsampling), each with as many
// pixels as maxImagePixels allows and padded to just under the upload limit (the PNG with incompressible
// rows, the JPEG with segments decoders skip), so that a request holds as much as it can.
import { encode as encodePng } from "fast-png";
import type { Limits } from "../../../src/options.ts";
import { encodeFlatJpeg } from "../flat-jpeg.ts";

export interface MaxUpload {
  kind: "png-rgba16" | "jpeg-progressive";
  width: number;
  height: number;
  bytes: Uint8Array;
}

/** What the body may hold, leaving room for nothing else: the image is the whole body. */
const bodyTarget = (limits: Limits) => Math.min(limits.maxUploadBytes, limits.maxBodyBytes) - 1024;

function side(limits: Limits): number {
  return Math.min(limits.maxImageSide, Math.floor(Math.sqrt(limits.maxImagePixels)));
}

export function maxPng(limits: Limits): MaxUpload {
  const n = side(limits);
  const target = bodyTarget(limits);
  const rowBytes = n * 8;
  // Random rows do not compress; the rest (a gradient) almost vanishes. Fill until near the target.
  let randomRows = Math.min(n, Math.floor((target - 64 * 1024) / (rowBytes + 1)));
  for (;;) {
    const data = new Uint16Array(n * n * 4);
    let s = 12345;
    for (let y = 0; y < n; y++) {
      for (let i = 0; i < n * 4; i++) {
        if (y < randomRows) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          data[y * n * 4 + i] = s >>> 16;
        } else {
          data[y * n * 4 + i] = (y * 64 + i) & 0xffff;
        }
      }
    }
    const bytes = encodePng({ width: n, height: n, channels: 4, depth: 16, data });
    if (bytes.length <= bodyTarget(limits) + 1024 || randomRows === 0)
      return { kind: "png-rgba16", width: n, height: n, bytes };
    randomRows = Math.max(0, randomRows - Math.ceil((bytes.length - target) / rowBytes));
  }
}

export function maxJpeg(limits: Limits): MaxUpload {
  const n = side(limits);
  const bytes = encodeFlatJpeg({
    width: n,
    height: n,
    components: 3,
    progressive: true,
    blockValue: (bx, by, c) => (bx * 7 + by * 13 + c * 90) & 0xff,
    padTo: bodyTarget(limits),
  });
  return { kind: "jpeg-progressive", width: n, height: n, bytes };
}
