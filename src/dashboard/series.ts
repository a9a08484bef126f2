// The dashboard's figures over time, read from the same D1 tables as GET /v1/report (raw runs plus
// the hourly aggregates the cron trigger folds them into), every reason (split, forced, compare,
// shadow) together: per interval and per arm, model and version, the runs, errors and latency
// percentiles (nearest rank over every run that reached the model, failures included at the time the
// Worker waited: the report's latencyMs); per interval and student version, top-1 agreement with the
// teacher and its 95% Wilson interval; and over the whole window, each arm's latency distribution
// over the same runs (rounded to two significant figures, as the hourly histogram keeps them).
//
// Intervals start at multiples of their length since the epoch. An aggregated hour counts in the
// interval its start falls in, so intervals shorter than an hour see aggregated hours as spikes; the
// dashboard's 15 min and 1 h windows only reach aggregates when MEASUREMENT_RETENTION_HOURS is 1.
import type { D1Database } from "@cloudflare/workers-types";
import type { Arm } from "../measurements/records.ts";
import { LATENCY_BUCKET, RAN, teacherOkPair } from "../measurements/rollup.ts";
import { batchRows } from "../storage/database.ts";

export interface SeriesKey {
  arm: Arm;
  model: string;
  /** null for rows recorded before versions were (as in the report). */
  version: string | null;
}

export interface VolumePoint {
  /** The interval's start, milliseconds since the epoch. */
  t: number;
  count: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface AgreementPoint {
  t: number;
  pairs: number;
  agreeing: number;
  top1: number;
  /** 95% Wilson score interval of top1. */
  low: number;
  high: number;
}

export interface Series {
  since: number;
  until: number;
  intervalMs: number;
  runs: (SeriesKey & { points: VolumePoint[] })[];
  agreement: (Omit<SeriesKey, "arm"> & { points: AgreementPoint[] })[];
  /** Per arm, model and version: [latency ms, share of the runs at or under it], ascending. */
  latencyCdf: (SeriesKey & { runs: number; points: [number, number][] })[];
}

// ?1 = since, ?2 = until, ?3 = the interval's length (% works in integers even when D1 binds it as REAL).
const RAW = "ts >= ?1 AND ts < ?2";
const HOURS = "hour >= ?1 AND hour < ?2";
const KEY = "arm, model, version";

const pct = (p: number) => `MIN(CASE WHEN cum * 100 >= ${p} * n THEN v END)`;

const RUNS_SQL = `
WITH volume AS (
  SELECT t, ${KEY}, SUM(count) AS count, SUM(errors) AS errors FROM (
    SELECT (ts - ts % ?3) AS t, ${KEY}, COUNT(*) AS count, SUM(ok = 0) AS errors FROM runs WHERE ${RAW} GROUP BY t, ${KEY}
    UNION ALL SELECT (hour - hour % ?3), ${KEY}, count, errors FROM run_hours WHERE ${HOURS}
  ) GROUP BY t, ${KEY}
),
lat AS (
  SELECT (ts - ts % ?3) AS t, ${KEY}, latency_ms AS v, 1 AS weight FROM runs WHERE ${RAW} AND ${RAN}
  UNION ALL SELECT (hour - hour % ?3), ${KEY}, latency_ms, n FROM run_hour_latency WHERE ${HOURS}
),
ranked AS (
  SELECT t, ${KEY}, v,
    SUM(weight) OVER (PARTITION BY t, ${KEY} ORDER BY v ROWS UNBOUNDED PRECEDING) AS cum,
    SUM(weight) OVER (PARTITION BY t, ${KEY}) AS n
  FROM lat
),
pct AS (SELECT t, ${KEY}, ${pct(50)} AS p50, ${pct(95)} AS p95, ${pct(99)} AS p99 FROM ranked GROUP BY t, ${KEY})
SELECT volume.t, volume.arm, volume.model, volume.version, volume.count, volume.errors, pct.p50, pct.p95, pct.p99
FROM volume LEFT JOIN pct USING (t, arm, model, version)
ORDER BY volume.arm, volume.model, volume.version, volume.t`;

// A pair is a request where the student and the teacher both answered (same id, same arrival time).
const AGREEMENT_SQL = `
SELECT t, model, version, SUM(pairs) AS pairs, SUM(agreeing) AS agreeing FROM (
  SELECT (s.ts - s.ts % ?3) AS t, s.model, s.version, COUNT(*) AS pairs, SUM(s.top1 = t.top1) AS agreeing
  FROM runs s JOIN ${teacherOkPair("runs")}
  WHERE s.arm = 'student' AND s.ok = 1 AND s.ts >= ?1 AND s.ts < ?2
  GROUP BY 1, 2, 3
  UNION ALL SELECT (hour - hour % ?3), model, version, pairs, agreeing FROM run_hours WHERE ${HOURS} AND arm = 'student' AND pairs > 0
) GROUP BY t, model, version ORDER BY model, version, t`;

const HISTOGRAM_SQL = `
SELECT ${KEY}, v, SUM(n) AS n FROM (
  SELECT ${KEY}, ${LATENCY_BUCKET} AS v, COUNT(*) AS n FROM runs WHERE ${RAW} AND ${RAN} GROUP BY ${KEY}, v
  UNION ALL SELECT ${KEY}, latency_ms, n FROM run_hour_latency WHERE ${HOURS}
) GROUP BY ${KEY}, v ORDER BY ${KEY}, v`;

/** The 95% Wilson score interval of `successes` out of `n` (n > 0). */
export function wilsonInterval(successes: number, n: number, z = 1.959963984540054): { low: number; high: number } {
  const p = successes / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

const keyOf = (r: SeriesKey) => `${r.arm}\u0000${r.model}\u0000${r.version}`;

/** Groups rows by a key, keeping first-seen order. */
function groupBy<R, K>(rows: R[], key: (r: R) => string, head: (r: R) => K): (K & { rows: R[] })[] {
  const groups = new Map<string, K & { rows: R[] }>();
  for (const r of rows) {
    const k = key(r);
    let g = groups.get(k);
    if (!g) {
      g = { ...head(r), rows: [] };
      groups.set(k, g);
    }
    g.rows.push(r);
  }
  return [...groups.values()];
}

export async function buildSeries(db: D1Database, since: number, until: number, intervalMs: number): Promise<Series> {
  if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0)
    throw new RangeError(`intervalMs must be a positive integer, got ${intervalMs}`);
  type RunRow = SeriesKey & VolumePoint;
  type PairRow = { t: number; model: string; version: string; pairs: number; agreeing: number };
  type BucketRow = SeriesKey & { v: number; n: number };
  const [runs, agreement, histogram] = await batchRows<[RunRow, PairRow, BucketRow]>(db, [
    db.prepare(RUNS_SQL).bind(since, until, intervalMs),
    db.prepare(AGREEMENT_SQL).bind(since, until, intervalMs),
    db.prepare(HISTOGRAM_SQL).bind(since, until),
  ]);
  // D1 keeps "" for an unrecorded version; the report says null.
  const versionOf = (v: string | null) => (v === "" ? null : v);
  const head = (r: SeriesKey): SeriesKey => ({ arm: r.arm, model: r.model, version: versionOf(r.version) });
  return {
    since,
    until,
    intervalMs,
    runs: groupBy(runs, keyOf, head).map(({ rows, ...k }) => ({
      ...k,
      points: rows.map(({ t, count, errors, p50, p95, p99 }) => ({ t, count, errors, p50, p95, p99 })),
    })),
    agreement: groupBy(
      agreement,
      (r) => `${r.model}\u0000${r.version}`,
      (r) => ({ model: r.model, version: versionOf(r.version) }),
    ).map(({ rows, ...k }) => ({
      ...k,
      points: rows.map(({ t, pairs, agreeing }) => ({
        t,
        pairs,
        agreeing,
        top1: agreeing / pairs,
        ...wilsonInterval(agreeing, pairs),
      })),
    })),
    latencyCdf: groupBy(histogram, keyOf, head).map(({ rows, ...k }) => {
      const total = rows.reduce((n, r) => n + r.n, 0);
      let cumulative = 0;
      return {
        ...k,
        runs: total,
        points: rows.map((r): [number, number] => {
          cumulative += r.n;
          return [r.v, cumulative / total];
        }),
      };
    }),
  };
}
