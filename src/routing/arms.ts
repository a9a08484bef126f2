// Running one image on either arm and timing it. The student runs here, in the Worker; the teacher
// is asked over the protocol. Latency covers the model run only (for the teacher that includes the
// network and encoding); decoding the image is shared work and is not counted.
import type { ModelEntry } from "../../models/schema.ts";
import { inputGeometry, toModelInput } from "../image/preprocess.ts";
import type { Image } from "../image/types.ts";
import type { ModelStore } from "../models/store.ts";
import type { Fault, RunRecord } from "./measurements.ts";
import type { Arm } from "./split.ts";
import { type TeacherEndpoint, askTeacher } from "./teacher-client.ts";

export type ArmResult =
  | { ok: true; arm: Arm; entry: ModelEntry; probabilities: Float32Array; top1: number; latencyMs: number }
  | { ok: false; arm: Arm; entry: ModelEntry; fault: Fault; detail: string; latencyMs: number; error?: unknown };

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The [1, ...] shape of one image in the model's layout. */
export function singleImageDims(entry: ModelEntry): number[] {
  const { height, width, channels } = inputGeometry(entry);
  return entry.input.layout === "NCHW" ? [1, channels, height, width] : [1, height, width, channels];
}

export async function runStudent(store: ModelStore, entry: ModelEntry, image: Image): Promise<ArmResult> {
  const input = toModelInput(image, entry);
  const started = performance.now();
  try {
    const probabilities = (await store.run(entry, input, singleImageDims(entry))).get("probabilities")?.data;
    if (!probabilities) throw new Error(`model "${entry.name}" gave no probabilities`);
    return { ok: true, arm: "student", entry, probabilities, top1: argmax(probabilities), latencyMs: performance.now() - started };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, arm: "student", entry, fault: "inference_error", detail, latencyMs: performance.now() - started, error };
  }
}

export async function runTeacher(endpoint: TeacherEndpoint, entry: ModelEntry, image: Image): Promise<ArmResult> {
  const answer = await askTeacher(endpoint, entry, toModelInput(image, entry), singleImageDims(entry));
  if (!answer.ok) return { ok: false, arm: "teacher", entry, fault: answer.fault, detail: answer.detail, latencyMs: answer.latencyMs };
  return { ok: true, arm: "teacher", entry, probabilities: answer.probabilities, top1: argmax(answer.probabilities), latencyMs: answer.latencyMs };
}

/** The measurement row of a run. */
export function runRecord(result: ArmResult, served: boolean): RunRecord {
  const base = { arm: result.arm, model: result.entry.name, latencyMs: result.latencyMs, served };
  return result.ok ? { ...base, ok: true, top1: result.top1 } : { ...base, ok: false, fault: result.fault };
}
