// Where a request's measurement rows go: to the measurements queue when the Worker has one (a consumer
// writes them to D1 in batches: one write transaction per batch instead of one per request), else
// straight to D1. Either way after the response (waitUntil), so recording never adds to the
// client's wait, and a failure is logged, never surfaced to the client.
import type { D1Database, Queue } from "@cloudflare/workers-types";
import type { RunRow } from "./records.ts";
import { insertRows } from "./write.ts";

/** A queue message: the rows one request wrote at one moment (a shadow's teacher row comes later). */
export interface MeasurementMessage {
  rows: RunRow[];
}

export interface MeasurementSink {
  readonly kind: "queue" | "direct";
  write(rows: RunRow[]): Promise<void>;
}

export function queueSink(queue: Queue<MeasurementMessage>): MeasurementSink {
  return { kind: "queue", write: async (rows) => void (await queue.send({ rows }, { contentType: "json" })) };
}

export function directSink(db: D1Database): MeasurementSink {
  return { kind: "direct", write: (rows) => insertRows(db, rows, "direct") };
}

export function measurementSink(db: D1Database, queue: Queue<MeasurementMessage> | undefined): MeasurementSink {
  return queue ? queueSink(queue) : directSink(db);
}

export interface Background {
  waitUntil(work: Promise<unknown>): void;
}

/** Records rows once they are known, after the response. */
export function recordLater(ctx: Background, sink: MeasurementSink, rows: Promise<RunRow[]> | RunRow[]): void {
  ctx.waitUntil(
    Promise.resolve(rows)
      .then((r) => (r.length > 0 ? sink.write(r) : undefined))
      .catch((err: unknown) => console.error(`measurement not recorded (${sink.kind}):`, err instanceof Error ? err.message : err)),
  );
}
