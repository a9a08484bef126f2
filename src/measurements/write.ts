// Rows into D1: any number of them in one write transaction (a D1 batch), whoever writes them (a
// request without a queue, or the queue consumer). A row already there (same request, time and arm: a
// queue batch delivered again after a failure) is skipped, so retries never duplicate. Each
// transaction also logs itself in `writes`, which is how the report counts D1 write transactions.
import type { D1Database } from "@cloudflare/workers-types";
import type { RunRow } from "./records.ts";

export type WriteSource = "direct" | "queue";

// One statement for all rows: the rows travel as one JSON parameter (D1 allows 100 bound parameters
// per statement, which would otherwise cap a statement at 9 rows).
const INSERT_RUNS = `
INSERT INTO runs (request_id, ts, mode, reason, arm, model, version, latency_ms, ok, fault, top1, served, status, client)
SELECT r.value ->> '$.requestId', r.value ->> '$.ts', r.value ->> '$.mode', r.value ->> '$.reason', r.value ->> '$.arm',
  r.value ->> '$.model', r.value ->> '$.version', r.value ->> '$.latencyMs', r.value ->> '$.ok', r.value ->> '$.fault',
  r.value ->> '$.top1', r.value ->> '$.served', r.value ->> '$.status', r.value ->> '$.client'
FROM json_each(?1) AS r WHERE true
ON CONFLICT (request_id, ts, arm) DO NOTHING`;

export async function insertRows(
  db: D1Database,
  rows: readonly RunRow[],
  source: WriteSource,
  now = Date.now(),
): Promise<void> {
  if (rows.length === 0) return;
  // Booleans as 0/1, as the table's CHECK constraints want them.
  const json = JSON.stringify(rows.map((r) => ({ ...r, ok: r.ok ? 1 : 0, served: r.served ? 1 : 0 })));
  await db.batch([
    db.prepare(INSERT_RUNS).bind(json),
    db.prepare("INSERT INTO writes (ts, source, rows) VALUES (?1, ?2, ?3)").bind(now, source, rows.length),
  ]);
}
