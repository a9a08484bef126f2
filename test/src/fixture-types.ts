// What the Node-side global setup hands the tests running in workerd (through vitest's provide/inject).
import type { Manifest } from "../../models/schema.ts";

export interface ReferenceRun {
  model: string;
  /** Input shape, batch first. */
  dims: number[];
  input: number[];
  /** onnxruntime-node's outputs on the same model and input. */
  logits: number[];
  probabilities: number[];
}

export interface EdgeFixtures {
  /** Two students: grey 28x28 (Fashion-MNIST-like) and RGB 32x32 (CIFAR-like). */
  manifest: Manifest;
  /** ONNX bytes by file name, base64. */
  files: Record<string, string>;
  references: ReferenceRun[];
}

declare module "vitest" {
  interface ProvidedContext {
    edge: EdgeFixtures;
  }
}
