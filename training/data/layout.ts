// Training code holds images NHWC (tfjs' layout); exported ONNX models take NCHW.

/** Normalized float images, NHWC, as the training code feeds them. */
export interface Images {
  data: Float32Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/** Images from..from+count of an NHWC buffer, as NCHW (the exported models' layout). */
export function nhwcToNchw(images: Images, from = 0, count = images.count - from): Float32Array {
  const { height: h, width: w, channels: c } = images;
  const size = h * w * c;
  const out = new Float32Array(count * size);
  for (let n = 0; n < count; n++) {
    const src = (from + n) * size;
    for (let k = 0; k < c; k++)
      for (let p = 0; p < h * w; p++) out[n * size + k * h * w + p] = images.data[src + p * c + k]!;
  }
  return out;
}
