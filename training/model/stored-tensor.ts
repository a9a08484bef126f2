// A tensor as plain data: what a checkpoint stores for each weight and optimizer slot, and what the
// optimizer hands over and takes back, without holding tfjs memory.

export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}
