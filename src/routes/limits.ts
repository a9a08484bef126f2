// The API's size limits: what one request may carry, and what an image may cost to decode.
import type { ImageLimits } from "../../models/image/types.ts";

export interface Limits {
  /** Largest request body, in bytes (images and JSON alike). */
  maxBodyBytes: number;
  /** Largest uploaded image (a raw body, or the file of a multipart form), in bytes. */
  maxUploadBytes: number;
  /** Largest batch one infer request may carry. */
  maxBatch: number;
  /** Largest image width or height. */
  maxImageSide: number;
  /** Largest image width x height. */
  maxImagePixels: number;
  /** Most memory the JPEG decoder may take for one image (see ImageLimits.maxJpegDecoderBytes). */
  maxJpegDecoderBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 4 * 1024 * 1024,
  // Uploads, pixels and the JPEG decoder are sized together so that 8 concurrent uploads at these
  // limits stay under a Worker's 128 MB (docs/ab-safety.md, memory). 768x512 pixels take a VGA
  // frame (640x480); a 16-bit RGBA PNG of 768x512 stored without compression would be 3.1 MB.
  maxUploadBytes: 2.5 * 1024 * 1024,
  maxBatch: 64,
  maxImageSide: 8192,
  maxImagePixels: 768 * 512,
  // jpeg-js's own count for a 4-component JPEG without subsampling at maxImagePixels: 28 bytes a pixel.
  maxJpegDecoderBytes: 28 * 768 * 512,
};

/** The image limits of the API's limits. */
export function imageLimits(limits: Limits): ImageLimits {
  return {
    maxSide: limits.maxImageSide,
    maxPixels: limits.maxImagePixels,
    maxJpegDecoderBytes: limits.maxJpegDecoderBytes,
  };
}
