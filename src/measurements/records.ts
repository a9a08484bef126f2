// What is measured: one row per model run (see migrations/), the same shape whether it is written to
// D1 directly or travels through the measurements queue first.
import type { Arm } from "../routing/split.ts";

export type Mode = "ab" | "shadow" | "compare";

/** Why a run gave no prediction. The last three mean the teacher was not asked (or was cut off). */
export const FAULTS = ["timeout", "unreachable", "http_error", "bad_response", "inference_error", "rate_limited", "circuit_open", "cut"] as const;
export type Fault = (typeof FAULTS)[number];

export interface RunRecord {
  arm: Arm;
  model: string;
  latencyMs: number;
  ok: boolean;
  fault?: Fault;
  top1?: number;
  /** This run's prediction is what the client received. */
  served: boolean;
}

/** One row of the runs table. A request has at most one row per arm: (requestId, arm) is its key. */
export interface RunRow {
  requestId: string;
  /** Milliseconds since the epoch, when the request arrived (every row of a request shares it). */
  ts: number;
  mode: Mode;
  /** HTTP status the client received. */
  status: number;
  arm: Arm;
  model: string;
  latencyMs: number;
  ok: boolean;
  fault: Fault | null;
  top1: number | null;
  served: boolean;
}

/** What a request says about itself; each run adds its part. */
export interface RequestInfo {
  requestId: string;
  ts: number;
  mode: Mode;
  status: number;
}

export const toRow = (request: RequestInfo, run: RunRecord): RunRow => ({
  ...request,
  arm: run.arm,
  model: run.model,
  latencyMs: run.latencyMs,
  ok: run.ok,
  fault: run.fault ?? null,
  top1: run.top1 ?? null,
  served: run.served,
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A row from outside the isolate (a queue message), checked field by field; a string says what is wrong. */
export function parseRow(v: unknown): RunRow | string {
  if (!isObject(v)) return "not an object";
  const { requestId, ts, mode, status, arm, model, latencyMs, ok, fault, top1, served } = v;
  if (typeof requestId !== "string" || requestId.length === 0 || requestId.length > 100) return "requestId";
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) return "ts";
  if (mode !== "ab" && mode !== "shadow" && mode !== "compare") return "mode";
  if (typeof status !== "number" || !Number.isInteger(status)) return "status";
  if (arm !== "student" && arm !== "teacher") return "arm";
  if (typeof model !== "string" || model.length === 0) return "model";
  if (typeof latencyMs !== "number" || !Number.isFinite(latencyMs) || latencyMs < 0) return "latencyMs";
  if (typeof ok !== "boolean" || typeof served !== "boolean") return "ok/served";
  if (fault !== null && !(FAULTS as readonly unknown[]).includes(fault)) return "fault";
  if (top1 !== null && (typeof top1 !== "number" || !Number.isInteger(top1))) return "top1";
  return { requestId, ts, mode, status, arm, model, latencyMs, ok, fault: fault as Fault | null, top1: top1 as number | null, served };
}
