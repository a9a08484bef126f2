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

/** To the queue; when the queue refuses a message, the rows go straight to D1 rather than nowhere. */
export function queueSink(queue: Queue<MeasurementMessage>, fallback: MeasurementSink): MeasurementSink {
  return {
    kind: "queue",
    async write(rows) {
      try {
        await queue.send({ rows }, { contentType: "json" });
      } catch (err) {
        const requestIds = [...new Set(rows.map((r) => r.requestId))];
        console.error(
          JSON.stringify({
            event: "measurement_queue_refused",
            rows: rows.length,
            requestIds,
            fallback: "d1",
            error: err instanceof Error ? err.message : String(err),
          }),
        );
        await fallback.write(rows);
      }
    },
  };
}

export function directSink(db: D1Database): MeasurementSink {
  return { kind: "direct", write: (rows) => insertRows(db, rows, "direct") };
}

export function measurementSink(db: D1Database, queue: Queue<MeasurementMessage> | undefined): MeasurementSink {
  return queue ? queueSink(queue, directSink(db)) : directSink(db);
}

export interface Background {
  waitUntil(work: Promise<unknown>): void;
}

/** Records rows once they are known, after the response. */
export function recordLater(ctx: Background, sink: MeasurementSink, rows: Promise<RunRow[]> | RunRow[]): void {
  ctx.waitUntil(
    Promise.resolve(rows)
      .then((r) => (r.length > 0 ? sink.write(r) : undefined))
      .catch((err: unknown) =>
        console.error(
          JSON.stringify({
            event: "measurement_not_recorded",
            sink: sink.kind,
            error: err instanceof Error ? err.message : String(err),
          }),
        ),
      ),
  );
}
