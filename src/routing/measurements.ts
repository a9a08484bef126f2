// Writes what each request did to D1: one row per model run (see migrations/0001_measurements.sql).
// Called from waitUntil, after the response, so recording never adds to the client's latency.
import type { D1Database } from "@cloudflare/workers-types";
import type { Arm } from "./split.ts";

export type Mode = "ab" | "shadow" | "compare";
export type Fault = "timeout" | "unreachable" | "http_error" | "bad_response" | "inference_error";

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

export interface RequestRecord {
  requestId: string;
  /** Milliseconds since the epoch, when the request arrived. */
  ts: number;
  mode: Mode;
  /** HTTP status the client received. */
  status: number;
  runs: RunRecord[];
}

export async function recordRequest(db: D1Database, record: RequestRecord): Promise<void> {
  if (record.runs.length === 0) return;
  const insert = db.prepare(
    "INSERT INTO runs (request_id, ts, mode, arm, model, latency_ms, ok, fault, top1, served, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
  );
  await db.batch(
    record.runs.map((r) =>
      insert.bind(record.requestId, record.ts, record.mode, r.arm, r.model, r.latencyMs, r.ok ? 1 : 0, r.fault ?? null, r.top1 ?? null, r.served ? 1 : 0, record.status),
    ),
  );
}

/** Records after the response; a failed write is logged, never surfaced to the client. */
export function recordAfterResponse(ctx: { waitUntil(p: Promise<unknown>): void }, db: D1Database, work: Promise<RequestRecord | undefined>): void {
  ctx.waitUntil(
    work
      .then((record) => (record ? recordRequest(db, record) : undefined))
      .catch((err: unknown) => console.error("measurement not recorded:", err instanceof Error ? err.message : err)),
  );
}
