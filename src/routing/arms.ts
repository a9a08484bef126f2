// Running one image on either arm and timing it. The student runs here, in the Worker; the teacher
// is asked over the protocol (only through teacher-gate.ts). Latency covers the model run only (for
// the teacher that includes the network and encoding); decoding the image is shared work and is not
// counted.
import type { ModelEntry } from "../../models/schema.ts";
import type { Arm, Fault, RunRecord } from "../measurements/records.ts";
import { singleImageDims } from "../../models/image/preprocess.ts";
import type { ModelStore } from "../models/store.ts";
import { type TeacherEndpoint, askTeacher } from "./teacher-client.ts";

export type ArmResult =
  | { ok: true; arm: Arm; entry: ModelEntry; probabilities: Float32Array; top1: number; latencyMs: number }
  | { ok: false; arm: Arm; entry: ModelEntry; fault: Fault; detail: string; latencyMs: number; error?: unknown };

export type ArmFailure = Extract<ArmResult, { ok: false }>;

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Runs the student on its input tensor (toModelInputs). */
export async function runStudent(store: ModelStore, entry: ModelEntry, input: Float32Array): Promise<ArmResult> {
  const started = performance.now();
  try {
    const probabilities = (await store.run(entry, input, singleImageDims(entry))).get("probabilities")?.data;
    if (!probabilities) throw new Error(`model "${entry.name}" gave no probabilities`);
    return {
      ok: true,
      arm: "student",
      entry,
      probabilities,
      top1: argmax(probabilities),
      latencyMs: performance.now() - started,
    };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      arm: "student",
      entry,
      fault: "inference_error",
      detail,
      latencyMs: performance.now() - started,
      error,
    };
  }
}

/** Asks the teacher about its input tensor; every failure is a fault, never an exception. */
export async function runTeacher(
  endpoint: TeacherEndpoint,
  entry: ModelEntry,
  input: Float32Array,
  timeoutMs: number,
): Promise<ArmResult> {
  const answer = await askTeacher(endpoint, entry, input, singleImageDims(entry), timeoutMs);
  if (!answer.ok)
    return {
      ok: false,
      arm: "teacher",
      entry,
      fault: answer.fault,
      detail: answer.detail,
      latencyMs: answer.latencyMs,
    };
  return {
    ok: true,
    arm: "teacher",
    entry,
    probabilities: answer.probabilities,
    top1: argmax(answer.probabilities),
    latencyMs: answer.latencyMs,
  };
}

/** A teacher run that did not happen: the reason, at no latency. */
export function teacherSkipped(entry: ModelEntry, fault: Fault, detail: string): ArmFailure {
  return { ok: false, arm: "teacher", entry, fault, detail, latencyMs: 0 };
}

/** The measurement of a run. */
export function runRecord(result: ArmResult, served: boolean): RunRecord {
  const base = {
    arm: result.arm,
    model: result.entry.name,
    version: result.entry.version,
    latencyMs: result.latencyMs,
    served,
  };
  return result.ok ? { ...base, ok: true, top1: result.top1 } : { ...base, ok: false, fault: result.fault };
}
