// The cron trigger's job: raw rows older than the retention period become hourly aggregates (counts,
// faults, a latency histogram, agreement pairs, requests, write transactions) and are deleted. Each
// hour is folded and deleted in one D1 transaction, so a failure leaves it wholly raw and the next
// run tries again. The report reads raw rows and aggregates together.
import type { D1Database } from "@cloudflare/workers-types";

export const HOUR_MS = 3_600_000;
/** Default retention of raw rows. */
export const DEFAULT_RETENTION_HOURS = 72;
/** Hours folded per run at most, so that one run stays short after a long pause. */
const MAX_HOURS_PER_RUN = 48;

/** A request: a client may reuse its X-Request-Id, so a request is its id and its arrival time. */
export const REQUEST = "request_id || '@' || ts";

/** Joins to student row `s` the teacher row `t` of the same request in `table`, when the teacher answered. */
export const teacherOkPair = (table: string) =>
  `${table} t ON t.request_id = s.request_id AND t.ts = s.ts AND t.arm = 'teacher' AND t.ok = 1`;

/**
 * Runs that reached the model and so took time: successes and failures alike (a timeout at its
 * timeout), but not calls the breaker or the rate limit stopped before they left (latency 0).
 */
export const RAN = "(ok = 1 OR fault NOT IN ('rate_limited', 'circuit_open'))";

/** Latency rounded to two significant figures: the histogram's bucket, at most 5% off. */
export const LATENCY_BUCKET = `CASE
  WHEN latency_ms < 1 THEN ROUND(latency_ms, 2)
  WHEN latency_ms < 10 THEN ROUND(latency_ms, 1)
  WHEN latency_ms < 100 THEN ROUND(latency_ms)
  WHEN latency_ms < 1000 THEN ROUND(latency_ms / 10) * 10
  WHEN latency_ms < 10000 THEN ROUND(latency_ms / 100) * 100
  ELSE ROUND(latency_ms / 1000) * 1000 END`;

// ?1 = the hour's start, ?2 = its end. Every INSERT adds to what an earlier run folded for the same
// hour (rows that arrived late, after their hour was folded). Model version and reason stay grouping
// keys, so the report separates them over aggregated hours as over raw rows.
const IN_HOUR = "ts >= ?1 AND ts < ?2";
const KEYS = "arm, model, version, reason";
const FOLD_HOUR = [
  `INSERT INTO run_hours (hour, ${KEYS}, count, served, errors, pairs, agreeing)
   SELECT ?1, ${KEYS}, COUNT(*), SUM(served), SUM(ok = 0), 0, 0 FROM runs WHERE ${IN_HOUR} GROUP BY ${KEYS}
   ON CONFLICT (hour, ${KEYS}) DO UPDATE SET count = count + excluded.count, served = served + excluded.served, errors = errors + excluded.errors`,
  `INSERT INTO run_hours (hour, ${KEYS}, count, served, errors, pairs, agreeing)
   SELECT ?1, 'student', s.model, s.version, s.reason, 0, 0, 0, COUNT(*), SUM(s.top1 = t.top1)
   FROM runs s JOIN ${teacherOkPair("runs")}
   WHERE s.arm = 'student' AND s.ok = 1 AND s.ts >= ?1 AND s.ts < ?2 GROUP BY s.model, s.version, s.reason
   ON CONFLICT (hour, ${KEYS}) DO UPDATE SET pairs = pairs + excluded.pairs, agreeing = agreeing + excluded.agreeing`,
  `INSERT INTO run_hour_faults (hour, ${KEYS}, fault, n)
   SELECT ?1, ${KEYS}, fault, COUNT(*) FROM runs WHERE ${IN_HOUR} AND fault IS NOT NULL GROUP BY ${KEYS}, fault
   ON CONFLICT (hour, ${KEYS}, fault) DO UPDATE SET n = n + excluded.n`,
  `INSERT INTO run_hour_latency (hour, ${KEYS}, ok, latency_ms, n)
   SELECT ?1, ${KEYS}, ok, ${LATENCY_BUCKET} AS bucket, COUNT(*) FROM runs WHERE ${IN_HOUR} AND ${RAN} GROUP BY ${KEYS}, ok, bucket
   ON CONFLICT (hour, ${KEYS}, ok, latency_ms) DO UPDATE SET n = n + excluded.n`,
  `INSERT INTO request_hours (hour, requests, fallbacks, transactions, written_rows)
   SELECT ?1, COUNT(DISTINCT ${REQUEST}), COUNT(DISTINCT CASE WHEN arm = 'teacher' AND mode = 'ab' AND ok = 0 THEN ${REQUEST} END), 0, 0
   FROM runs WHERE ${IN_HOUR}
   ON CONFLICT (hour) DO UPDATE SET requests = requests + excluded.requests, fallbacks = fallbacks + excluded.fallbacks`,
  `INSERT INTO request_hours (hour, requests, fallbacks, transactions, written_rows)
   SELECT ?1, 0, 0, COUNT(*), COALESCE(SUM(rows), 0) FROM writes WHERE ${IN_HOUR}
   ON CONFLICT (hour) DO UPDATE SET transactions = transactions + excluded.transactions, written_rows = written_rows + excluded.written_rows`,
  `DELETE FROM runs WHERE ${IN_HOUR}`,
  `DELETE FROM writes WHERE ${IN_HOUR}`,
];

export interface RollUpResult {
  /** The hours folded, by their start (ISO 8601). */
  hours: string[];
  /** Raw rows now older than the retention period that a later run will fold (after a long pause). */
  remaining: boolean;
}

const OLDEST =
  "SELECT MIN(ts) AS ts FROM (SELECT MIN(ts) AS ts FROM runs WHERE ts < ?1 UNION ALL SELECT MIN(ts) FROM writes WHERE ts < ?1)";

/** Folds every whole hour that ended `retentionHours` or more before `now`, oldest first. */
export async function rollUp(
  db: D1Database,
  now: number,
  retentionHours = DEFAULT_RETENTION_HOURS,
): Promise<RollUpResult> {
  const cutoff = Math.floor((now - retentionHours * HOUR_MS) / HOUR_MS) * HOUR_MS;
  const hours: string[] = [];
  for (;;) {
    // The oldest hour that still has raw rows: empty hours cost nothing.
    const oldest = (await db.prepare(OLDEST).bind(cutoff).first<{ ts: number | null }>())?.ts ?? null;
    if (oldest === null) return { hours, remaining: false };
    if (hours.length === MAX_HOURS_PER_RUN) return { hours, remaining: true };
    const hour = Math.floor(oldest / HOUR_MS) * HOUR_MS;
    await db.batch(FOLD_HOUR.map((sql) => db.prepare(sql).bind(hour, hour + HOUR_MS)));
    hours.push(new Date(hour).toISOString());
  }
}
