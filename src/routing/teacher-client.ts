// The Worker's only way to the teacher: an Open Inference Protocol infer request (plain JSON, which
// every KServe v2 server and Triton accept) to TEACHER_URL. Every way it can go wrong comes back as a
// named fault rather than an exception, because the caller's answer is to fall back to the student.
import type { ModelEntry } from "../../models/schema.ts";
import type { Fault } from "../measurements/records.ts";

export interface TeacherEndpoint {
  /** Base URL of the OIP server, e.g. http://127.0.0.1:8000. */
  url: string;
  /** The teacher's name on that server. */
  model: string;
  /** The header that proves the Worker to the teacher host (teacher-link.ts), when a token is set. */
  auth?: [string, string];
}

export type TeacherAnswer =
  | { ok: true; probabilities: Float32Array; latencyMs: number }
  | { ok: false; fault: Fault; detail: string; latencyMs: number };

const OUTPUT = "probabilities";

/** The probabilities of a one-image answer, or a description of what is wrong with it. */
export function readProbabilities(json: unknown, classes: number): Float32Array | string {
  if (typeof json !== "object" || json === null) return "the body is not a JSON object";
  const outputs = (json as { outputs?: unknown }).outputs;
  if (!Array.isArray(outputs)) return "the body has no outputs array";
  const out = outputs.find(
    (o): o is Record<string, unknown> => typeof o === "object" && o !== null && o.name === OUTPUT,
  );
  if (!out) return `no "${OUTPUT}" output`;
  const shape = out.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== 1 || shape[1] !== classes) {
    return `"${OUTPUT}" has shape ${JSON.stringify(shape)}, expected [1, ${classes}]`;
  }
  const data = out.data;
  if (!Array.isArray(data) || data.length !== classes) return `"${OUTPUT}" does not carry ${classes} values`;
  const probabilities = new Float32Array(classes);
  for (let i = 0; i < classes; i++) {
    const v = data[i];
    if (typeof v !== "number" || !Number.isFinite(v)) return `"${OUTPUT}" value ${i} is not a finite number`;
    probabilities[i] = v;
  }
  return probabilities;
}

function faultOf(err: unknown): { fault: Fault; detail: string } {
  const name = err instanceof Error ? err.name : "";
  if (name === "TimeoutError" || name === "AbortError")
    return { fault: "timeout", detail: "no answer within the timeout" };
  return { fault: "unreachable", detail: err instanceof Error ? err.message : String(err) };
}

/** Runs one image (already preprocessed for the teacher's entry) on the teacher; never throws. */
export async function askTeacher(
  endpoint: TeacherEndpoint,
  entry: ModelEntry,
  input: Float32Array,
  dims: number[],
  timeoutMs: number,
): Promise<TeacherAnswer> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const body = JSON.stringify({
    inputs: [{ name: entry.input.name, shape: dims, datatype: "FP32", data: Array.from(input) }],
    outputs: [{ name: OUTPUT }],
  });
  const url = `${endpoint.url.replace(/\/+$/, "")}/v2/models/${encodeURIComponent(endpoint.model)}/infer`;
  try {
    // One signal covers connecting, the teacher's work and reading the body.
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (endpoint.auth) headers[endpoint.auth[0]] = endpoint.auth[1];
    const response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    if (!response.ok)
      return {
        ok: false,
        fault: "http_error",
        detail: `HTTP ${response.status}: ${text.slice(0, 200)}`,
        latencyMs: elapsed(),
      };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ok: false, fault: "bad_response", detail: "the body is not JSON", latencyMs: elapsed() };
    }
    const probabilities = readProbabilities(json, entry.labels.length);
    if (typeof probabilities === "string")
      return { ok: false, fault: "bad_response", detail: probabilities, latencyMs: elapsed() };
    return { ok: true, probabilities, latencyMs: elapsed() };
  } catch (err) {
    const fault = faultOf(err);
    // A timeout is measured at the timeout: the wait the client had, not the timer's late firing.
    return { ok: false, ...fault, latencyMs: fault.fault === "timeout" ? timeoutMs : elapsed() };
  }
}
