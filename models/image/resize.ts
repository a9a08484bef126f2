// Resampling with a triangle (bilinear) filter widened by the scale when shrinking, as Pillow's
// BILINEAR does: every source pixel contributes, so small models see an antialiased thumbnail.

interface Taps {
  start: Int32Array;
  count: Int32Array;
  /** count[i] normalized weights for output i, at i * stride. */
  weights: Float32Array;
  stride: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const radius = Math.max(scale, 1);
  const stride = Math.ceil(radius) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - radius));
    const hi = Math.min(inSize, Math.ceil(center + radius));
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - center) / radius));
      weights[i * stride + (j - lo)] = w;
      sum += w;
    }
    for (let j = 0; j < hi - lo; j++) weights[i * stride + j]! /= sum;
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, stride };
}

/** Resizes interleaved pixels (any numeric array) to outWidth x outHeight; returns interleaved floats. */
export function resize(
  src: ArrayLike<number>,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Float32Array {
  const h = taps(width, outWidth);
  const rows = new Float32Array(height * outWidth * channels);
  for (let y = 0; y < height; y++) {
    const srcRow = y * width * channels;
    const dstRow = y * outWidth * channels;
    for (let x = 0; x < outWidth; x++) {
      const first = srcRow + h.start[x]! * channels;
      const n = h.count[x]!;
      const w0 = x * h.stride;
      if (channels === 3) {
        // The common case, with one pass over the taps for all three channels.
        let r = 0;
        let g = 0;
        let b = 0;
        for (let k = 0; k < n; k++) {
          const w = h.weights[w0 + k]!;
          const i = first + k * 3;
          r += w * src[i]!;
          g += w * src[i + 1]!;
          b += w * src[i + 2]!;
        }
        rows[dstRow + x * 3] = r;
        rows[dstRow + x * 3 + 1] = g;
        rows[dstRow + x * 3 + 2] = b;
      } else {
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = 0; k < n; k++) acc += h.weights[w0 + k]! * src[first + k * channels + c]!;
          rows[dstRow + x * channels + c] = acc;
        }
      }
    }
  }
  // Vertical pass: whole rows at a time, so the inner loop runs over contiguous memory.
  const v = taps(height, outHeight);
  const rowLength = outWidth * channels;
  const out = new Float32Array(outHeight * rowLength);
  for (let y = 0; y < outHeight; y++) {
    const dst = y * rowLength;
    for (let k = 0; k < v.count[y]!; k++) {
      const w = v.weights[y * v.stride + k]!;
      const from = (v.start[y]! + k) * rowLength;
      for (let i = 0; i < rowLength; i++) out[dst + i]! += w * rows[from + i]!;
    }
  }
  return out;
}
