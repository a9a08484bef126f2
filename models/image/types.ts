/**
 * Decoded pixels as the pipeline uses them: 8 bits per channel, interleaved, alpha already applied
 * (composited over black). 8 bits keep a large photo within a Worker's 128 MB.
 */
export interface Image {
  width: number;
  height: number;
  /** 1 for grey sources, 3 for colour ones. */
  channels: 1 | 3;
  data: Uint8Array;
}

export type ImageFormat = "png" | "jpeg";

export interface ImageLimits {
  /** Largest width or height accepted. */
  maxSide: number;
  /** Largest width x height accepted (decoding memory grows with it). */
  maxPixels: number;
  /**
   * Most memory the JPEG decoder may account for (jpeg-js's own count: coefficient blocks, component
   * planes and output; its real use is about 1.5x that). Bounds what sampling factors and component
   * counts can do at a size that passes maxPixels.
   */
  maxJpegDecoderBytes: number;
}
