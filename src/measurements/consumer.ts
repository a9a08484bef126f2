// The measurements queue's consumer (the same Worker's queue handler): every message of a batch into
// D1 in one write transaction. A message that is not a measurement is logged and acknowledged (it
// would fail forever). When D1 fails, the whole batch is retried: rows a retry brings again are
// skipped by the table's (request_id, ts, arm) key, so nothing is lost and nothing is counted twice.
import type { D1Database, Message, MessageBatch } from "@cloudflare/workers-types";
import { type RunRow, parseRow } from "./records.ts";
import { insertRows } from "./write.ts";

export async function consumeMeasurements(batch: MessageBatch<unknown>, db: D1Database): Promise<void> {
  const rows: RunRow[] = [];
  const taken: Message<unknown>[] = [];
  for (const message of batch.messages) {
    const body = message.body as { rows?: unknown } | null;
    const parsed = Array.isArray(body?.rows) ? body.rows.map(parseRow) : ["no rows array"];
    const bad = parsed.find((r): r is string => typeof r === "string");
    if (bad !== undefined) {
      console.error(`measurement message ${message.id} dropped: bad ${bad}`);
      message.ack();
      continue;
    }
    rows.push(...(parsed as RunRow[]));
    taken.push(message);
  }
  try {
    await insertRows(db, rows, "queue");
  } catch (err) {
    console.error(
      `measurement batch of ${taken.length} messages not written, retrying: ${err instanceof Error ? err.message : String(err)}`,
    );
    // The consumer's retry_delay (wrangler.toml) spaces the attempts; after max_retries the messages
    // go to the dead-letter queue, where they wait to be replayed.
    for (const message of taken) message.retry();
    return;
  }
  for (const message of taken) message.ack();
}
