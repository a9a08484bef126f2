// What is measured: one row per model run (see migrations/), the same shape whether it is written to
// D1 directly or travels through the measurements queue first.
import { MAX_REQUEST_ID_LENGTH } from "../middleware/request-id.ts";

/** Which model answered: the student, run in the Worker, or the teacher, asked over the protocol. */
export type Arm = "student" | "teacher";
export const ARMS: readonly Arm[] = ["student", "teacher"];

export function isArm(value: string): value is Arm {
  return value === "student" || value === "teacher";
}

export type Mode = "ab" | "shadow" | "compare";

/**
 * Why a run's arm ran: the client's bucket, X-Force-Arm, POST /v1/compare, or a shadow (the teacher
 * after a student answer). A teacher fallback's student row keeps its request's reason.
 */
export const REASONS = ["split", "forced", "compare", "shadow"] as const;
export type Reason = (typeof REASONS)[number];
/** What rows written before reasons were recorded say (and queue messages from such a deployment). */
export const UNRECORDED = "unrecorded";
export type StoredReason = Reason | typeof UNRECORDED;

/** Why a run gave no prediction. The last three mean the teacher was not asked (or was cut off). */
export const FAULTS = [
  "timeout",
  "unreachable",
  "http_error",
  "bad_response",
  "inference_error",
  "rate_limited",
  "circuit_open",
  "cut",
] as const;
export type Fault = (typeof FAULTS)[number];

export interface RunRecord {
  arm: Arm;
  model: string;
  version: string;
  latencyMs: number;
  ok: boolean;
  fault?: Fault;
  top1?: number;
  /** This run's prediction is what the client received. */
  served: boolean;
}

/**
 * One row of the runs table. A request has at most one row per arm: (requestId, ts, arm) is its key
 * (a client may send the same X-Request-Id twice).
 */
export interface RunRow {
  /** The X-Request-Id of the response (src/middleware/request-id.ts). */
  requestId: string;
  /** Milliseconds since the epoch, when the request arrived (every row of a request shares it). */
  ts: number;
  mode: Mode;
  reason: StoredReason;
  /** HTTP status the client received. */
  status: number;
  arm: Arm;
  model: string;
  /** The model's version; "" where it was not recorded. */
  version: string;
  latencyMs: number;
  ok: boolean;
  fault: Fault | null;
  top1: number | null;
  served: boolean;
  /**
   * Who sent the request, as an opaque tag (routing/client.ts clientTag); absent in rows from before
   * clients were recorded, and in queue messages from such a deployment.
   */
  client?: string;
}

/** What a request says about itself; each run adds its part. */
export interface RequestInfo {
  requestId: string;
  ts: number;
  mode: Mode;
  /** Why the request's arm ran; a shadow's teacher row says "shadow" instead. */
  reason: Reason;
  status: number;
  client?: string;
}

export const toRow = (request: RequestInfo, run: RunRecord): RunRow => ({
  ...request,
  arm: run.arm,
  model: run.model,
  version: run.version,
  latencyMs: run.latencyMs,
  ok: run.ok,
  fault: run.fault ?? null,
  top1: run.top1 ?? null,
  served: run.served,
});

/** What a client tag looks like (16 hex digits). */
const CLIENT_TAG = /^[0-9a-f]{16}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A row from outside the isolate (a queue message), checked field by field; a string says what is
 * wrong. A message from a deployment that did not record reason and version still counts, as
 * unrecorded, rather than being dropped.
 */
export function parseRow(v: unknown): RunRow | string {
  if (!isObject(v)) return "not an object";
  const { requestId, ts, mode, reason, status, arm, model, version, latencyMs, ok, fault, top1, served, client } = v;
  if (typeof requestId !== "string" || requestId.length === 0 || requestId.length > MAX_REQUEST_ID_LENGTH)
    return "requestId";
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) return "ts";
  if (mode !== "ab" && mode !== "shadow" && mode !== "compare") return "mode";
  if (reason !== undefined && !(REASONS as readonly unknown[]).includes(reason)) return "reason";
  if (typeof status !== "number" || !Number.isInteger(status)) return "status";
  if (arm !== "student" && arm !== "teacher") return "arm";
  if (typeof model !== "string" || model.length === 0) return "model";
  if (version !== undefined && typeof version !== "string") return "version";
  if (typeof latencyMs !== "number" || !Number.isFinite(latencyMs) || latencyMs < 0) return "latencyMs";
  if (typeof ok !== "boolean" || typeof served !== "boolean") return "ok/served";
  if (fault !== null && !(FAULTS as readonly unknown[]).includes(fault)) return "fault";
  if (top1 !== null && (typeof top1 !== "number" || !Number.isInteger(top1))) return "top1";
  if (client !== undefined && (typeof client !== "string" || !CLIENT_TAG.test(client))) return "client";
  const row: RunRow = {
    requestId,
    ts,
    mode,
    reason: (reason as Reason | undefined) ?? UNRECORDED,
    status,
    arm,
    model,
    version: (version as string | undefined) ?? "",
    latencyMs,
    ok,
    fault: fault as Fault | null,
    top1: top1 as number | null,
    served,
  };
  return client === undefined ? row : { ...row, client };
}
