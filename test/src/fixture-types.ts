// What the Node-side global setup hands the tests running in workerd (through vitest's provide/inject).
import type { Manifest, ModelEntry } from "../../models/schema.ts";

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
  /** Colour JPEGs by name, base64 (jpeg-js's encoder needs Node's Buffer, so Node writes them). */
  jpegs: Record<string, string>;
}

/** The teacher hosts the A/B tests' global setup started (setup/teacher.ts). */
export interface TeacherHosts {
  /** The fixture teacher's manifest entry (28x28 grey, the grey28 student's labels). */
  entry: ModelEntry;
  /** The TEACHER_TOKEN every host checks. */
  token: string;
  url: string;
  /** Answers inference late (SLOW_TEACHER_DELAY_MS). */
  slowUrl: string;
  /** Answers inference with bodies that are not valid responses. */
  garbageUrl: string;
  /** Nothing listens there. */
  downUrl: string;
  /** A well-behaved host that wants the token, bare, in another header. */
  customHeader: { url: string; header: string };
}

declare module "vitest" {
  interface ProvidedContext {
    edge: EdgeFixtures;
    teacher: TeacherHosts;
  }
}
