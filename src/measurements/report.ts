// GET /v1/report's figures, computed in D1: per arm, model, model version and reason (why the arm
// ran: split, forced, compare, shadow), the run count, error rate (every failure, timeouts
// included), faults, latency percentiles (nearest rank) twice: over every run that reached the model
// (failures at the time the Worker waited, a timeout at its timeout) and over successful runs only;
// top-1 agreement with the teacher (over requests where both ran and succeeded) and the student/
// teacher ratio of median latencies; the D1 write transactions that recorded them; and, given the
// prices and the split, what 1,000 requests cost on each arm (cost.ts).
//
// Each figure adds the raw rows in the window to the hourly aggregates (rollup.ts) of the hours that
// start in it, so a window reaching back past the retention period still counts everything. Over
// aggregated hours, latencies come from a histogram rounded to two significant figures.
import type { D1Database } from "@cloudflare/workers-types";
import type { Arm, Fault, StoredReason } from "./records.ts";
import { batchRows } from "../storage/database.ts";
import { type CostReport, type Prices, type Split, costReport } from "./cost.ts";
import { RAN, REQUEST, teacherOkPair } from "./rollup.ts";

/** Nearest-rank latency percentiles over `runs` runs, saying whether failed runs are among them. */
export interface Percentiles {
  includesFailures: boolean;
  runs: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface ArmModelReport {
  arm: Arm;
  model: string;
  /** The model's version; null for rows recorded before versions were. */
  version: string | null;
  /** Why the arm ran; "unrecorded" for rows recorded before reasons were. */
  reason: StoredReason;
  count: number;
  /** Runs whose prediction the client received. */
  served: number;
  /** Failed runs, whatever the fault (timeouts, breaker, rate limit included). */
  errors: number;
  errorRate: number;
  faults: Partial<Record<Fault, number>>;
  /**
   * Every run that reached the model: successes, and failures at the time the Worker waited (a
   * timeout at the timeout). Calls the breaker or the rate limit stopped are not latencies.
   */
  latencyMs: Percentiles;
  /** Successful runs only. */
  successLatencyMs: Percentiles;
  /** Student rows: requests where this student and the teacher both answered, and the share that agreed. */
  agreement: { pairs: number; top1: number | null } | null;
  /** Student rows: this row's successful p50 over the teacher's (all its successful runs in the window). */
  latencyRatio: number | null;
}

export interface Report {
  since: string;
  until: string;
  requests: number;
  /** Requests the teacher was routed to but the student answered. */
  fallbacks: number;
  /** D1 write transactions that recorded measurements, the rows they carried, and per 1,000 requests. */
  writes: { transactions: number; rows: number; perThousandRequests: number | null };
  rows: ArmModelReport[];
  /** US dollars per 1,000 requests per arm, at the split and over the window; when the caller gives the prices. */
  cost?: CostReport;
}

// Nearest-rank percentile p over weighted values (a raw latency weighs 1, a histogram bucket its
// count): the smallest value whose cumulative weight c satisfies c >= p * n, written as c * 100 >= P * n
// so that no floating-point product decides a rank.
const pct = (p: number) => `MIN(CASE WHEN cum * 100 >= ${p} * n THEN v END)`;

// ?1 = since, ?2 = until. An aggregated hour counts when it starts in the window.
const HOURS = "hour >= ?1 AND hour < ?2";
const KEYS = "arm, model, version, reason";
const ON_KEYS = (a: string, b: string) =>
  ["arm", "model", "version", "reason"].map((k) => `${a}.${k} = ${b}.${k}`).join(" AND ");

/** Percentiles per key over the latencies `lat` that pass `filter`. */
const percentiles = (name: string, filter: string) => `
${name}_ranked AS (
  SELECT ${KEYS}, v,
    SUM(weight) OVER (PARTITION BY ${KEYS} ORDER BY v ROWS UNBOUNDED PRECEDING) AS cum,
    SUM(weight) OVER (PARTITION BY ${KEYS}) AS n
  FROM lat WHERE ${filter}
),
${name} AS (SELECT ${KEYS}, MAX(n) AS runs, ${pct(50)} AS p50, ${pct(95)} AS p95, ${pct(99)} AS p99 FROM ${name}_ranked GROUP BY ${KEYS})`;

const ROWS_SQL = `
WITH w AS (SELECT * FROM runs WHERE ts >= ?1 AND ts < ?2),
lat AS (
  SELECT ${KEYS}, ok, latency_ms AS v, 1 AS weight FROM w WHERE ${RAN}
  UNION ALL SELECT ${KEYS}, ok, latency_ms, n FROM run_hour_latency WHERE ${HOURS}
),
${percentiles("ran", "true")},
${percentiles("succeeded", "ok = 1")},
teacher_ranked AS (
  SELECT v, SUM(weight) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) AS cum, SUM(weight) OVER () AS n
  FROM lat WHERE arm = 'teacher' AND ok = 1
),
teacher_p50 AS (SELECT ${pct(50)} AS p50 FROM teacher_ranked),
agg AS (
  SELECT ${KEYS}, SUM(count) AS count, SUM(served) AS served, SUM(errors) AS errors FROM (
    SELECT ${KEYS}, COUNT(*) AS count, SUM(served) AS served, SUM(ok = 0) AS errors FROM w GROUP BY ${KEYS}
    UNION ALL SELECT ${KEYS}, count, served, errors FROM run_hours WHERE ${HOURS} AND count > 0
  ) GROUP BY ${KEYS}
),
pairs AS (
  SELECT ${KEYS}, SUM(pairs) AS pairs, SUM(agreeing) AS agreeing FROM (
    SELECT s.arm, s.model, s.version, s.reason, COUNT(*) AS pairs, SUM(s.top1 = t.top1) AS agreeing
    FROM w s JOIN ${teacherOkPair("w")}
    WHERE s.arm = 'student' AND s.ok = 1
    GROUP BY s.model, s.version, s.reason
    UNION ALL SELECT ${KEYS}, pairs, agreeing FROM run_hours WHERE ${HOURS} AND arm = 'student' AND pairs > 0
  ) GROUP BY ${KEYS}
)
SELECT agg.arm, agg.model, agg.version, agg.reason, agg.count, agg.served, agg.errors,
  ran.runs AS ran_runs, ran.p50 AS ran_p50, ran.p95 AS ran_p95, ran.p99 AS ran_p99,
  succeeded.runs AS ok_runs, succeeded.p50 AS ok_p50, succeeded.p95 AS ok_p95, succeeded.p99 AS ok_p99,
  pairs.pairs, pairs.agreeing, (SELECT p50 FROM teacher_p50) AS teacher_p50
FROM agg
LEFT JOIN ran ON ${ON_KEYS("ran", "agg")}
LEFT JOIN succeeded ON ${ON_KEYS("succeeded", "agg")}
LEFT JOIN pairs ON ${ON_KEYS("pairs", "agg")}
ORDER BY agg.arm, agg.model, agg.version, agg.reason`;

const FAULTS_SQL = `
SELECT ${KEYS}, fault, SUM(n) AS n FROM (
  SELECT ${KEYS}, fault, COUNT(*) AS n FROM runs WHERE ts >= ?1 AND ts < ?2 AND fault IS NOT NULL GROUP BY ${KEYS}, fault
  UNION ALL SELECT ${KEYS}, fault, n FROM run_hour_faults WHERE ${HOURS}
) GROUP BY ${KEYS}, fault`;

const TOTALS_SQL = `
SELECT
  (SELECT COUNT(DISTINCT ${REQUEST}) FROM runs WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(requests), 0) FROM request_hours WHERE ${HOURS}) AS requests,
  (SELECT COUNT(DISTINCT CASE WHEN arm = 'teacher' AND mode = 'ab' AND ok = 0 THEN ${REQUEST} END) FROM runs WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(fallbacks), 0) FROM request_hours WHERE ${HOURS}) AS fallbacks,
  (SELECT COUNT(*) FROM writes WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(transactions), 0) FROM request_hours WHERE ${HOURS}) AS transactions,
  (SELECT COALESCE(SUM(rows), 0) FROM writes WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(written_rows), 0) FROM request_hours WHERE ${HOURS}) AS written_rows`;

// What the cost is priced on: the student's runs that reached the model and their milliseconds in
// all, and the teacher's runs that reached it (a refusal by the breaker or the rate limit cost nothing).
const COST_SQL = `
SELECT
  COALESCE(SUM(CASE WHEN arm = 'student' THEN weight END), 0) AS student_runs,
  COALESCE(SUM(CASE WHEN arm = 'student' THEN v * weight END), 0) AS student_ms,
  COALESCE(SUM(CASE WHEN arm = 'teacher' THEN weight END), 0) AS teacher_runs
FROM (
  SELECT arm, latency_ms AS v, 1 AS weight FROM runs WHERE ts >= ?1 AND ts < ?2 AND ${RAN}
  UNION ALL SELECT arm, latency_ms, n FROM run_hour_latency WHERE ${HOURS}
)`;

interface Row {
  arm: Arm;
  model: string;
  version: string;
  reason: StoredReason;
  count: number;
  served: number;
  errors: number;
  ran_runs: number | null;
  ran_p50: number | null;
  ran_p95: number | null;
  ran_p99: number | null;
  ok_runs: number | null;
  ok_p50: number | null;
  ok_p95: number | null;
  ok_p99: number | null;
  pairs: number | null;
  agreeing: number | null;
  teacher_p50: number | null;
}

interface FaultRow {
  arm: string;
  model: string;
  version: string;
  reason: string;
  fault: Fault;
  n: number;
}

interface TotalsRow {
  requests: number;
  fallbacks: number;
  transactions: number;
  written_rows: number;
}

interface CostRow {
  student_runs: number;
  student_ms: number;
  teacher_runs: number;
}

const keyOf = (r: { arm: string; model: string; version: string; reason: string }) =>
  [r.arm, r.model, r.version, r.reason].join("\u0000");

/** The report over [since, until); with `pricing` (the routing settings carry it) its cost too. */
export async function buildReport(
  db: D1Database,
  since: number,
  until: number,
  pricing?: Prices & Split,
): Promise<Report> {
  const [rows, faults, totals, measured] = await batchRows<[Row, FaultRow, TotalsRow, CostRow]>(db, [
    db.prepare(ROWS_SQL).bind(since, until),
    db.prepare(FAULTS_SQL).bind(since, until),
    db.prepare(TOTALS_SQL).bind(since, until),
    db.prepare(COST_SQL).bind(since, until),
  ]);
  const faultsOf = new Map<string, Partial<Record<Fault, number>>>();
  for (const f of faults) {
    faultsOf.set(keyOf(f), { ...faultsOf.get(keyOf(f)), [f.fault]: f.n });
  }
  // An aggregate without GROUP BY always answers one row.
  const total = totals[0]!;
  return {
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
    requests: total.requests,
    fallbacks: total.fallbacks,
    writes: {
      transactions: total.transactions,
      rows: total.written_rows,
      perThousandRequests: total.requests > 0 ? (total.transactions / total.requests) * 1000 : null,
    },
    rows: rows.map((r) => ({
      arm: r.arm,
      model: r.model,
      version: r.version === "" ? null : r.version,
      reason: r.reason,
      count: r.count,
      served: r.served,
      errors: r.errors,
      errorRate: r.count > 0 ? r.errors / r.count : 0,
      faults: faultsOf.get(keyOf(r)) ?? {},
      latencyMs: { includesFailures: true, runs: r.ran_runs ?? 0, p50: r.ran_p50, p95: r.ran_p95, p99: r.ran_p99 },
      successLatencyMs: { includesFailures: false, runs: r.ok_runs ?? 0, p50: r.ok_p50, p95: r.ok_p95, p99: r.ok_p99 },
      agreement:
        r.arm === "student" ? { pairs: r.pairs ?? 0, top1: r.pairs ? (r.agreeing ?? 0) / r.pairs : null } : null,
      latencyRatio: r.arm === "student" && r.ok_p50 !== null && r.teacher_p50 ? r.ok_p50 / r.teacher_p50 : null,
    })),
    ...(pricing ? { cost: costOf(pricing, total.requests, measured[0]!) } : {}),
  };
}

const costOf = (pricing: Prices & Split, requests: number, m: CostRow): CostReport =>
  costReport(pricing, pricing, {
    requests,
    studentRuns: m.student_runs,
    studentMs: m.student_ms,
    teacherRuns: m.teacher_runs,
  });

const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration such as "15m", "2h" or "7d" in milliseconds; undefined when it is not one. */
export function durationMs(value: string): number | undefined {
  const m = DURATION.exec(value);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}
/** A date, or a date and time with its offset (a time without one would be read in the server's zone). */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;
/** No measurement is older than this: an earlier `since` is a mistake (seconds for milliseconds, a year). */
export const EARLIEST_SINCE = Date.UTC(2000, 0, 1);

export class SinceError extends Error {
  override name = "SinceError";
}

const FORMS =
  "an ISO 8601 date or time with offset (2026-11-29, 2026-11-29T20:00:00Z), milliseconds since the epoch, or a duration such as 15m, 2h, 7d";

/** The epoch milliseconds of an ISO 8601 date or date-time, or NaN (a 31 February included). */
function isoTime(value: string): number {
  const m = ISO_8601.exec(value);
  if (!m) return NaN;
  const t = Date.parse(value);
  // Date.parse rolls 2026-02-31 over into March; the date written must be the date read.
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  return day.getUTCFullYear() === y && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d ? t : NaN;
}

/**
 * `since` in epoch milliseconds, from an ISO 8601 date or date-time with offset, epoch milliseconds,
 * or a duration back from now ("15m", "2h", "7d"); absent means from the beginning (0). Anything
 * else, and any time before EARLIEST_SINCE or after `now`, throws a SinceError that says why.
 */
export function parseSince(value: string | undefined, now: number): number {
  if (value === undefined || value === "") return 0;
  const shown = JSON.stringify(value.slice(0, 40));
  let t: number;
  const duration = durationMs(value);
  if (duration !== undefined) {
    t = now - duration;
  } else if (/^\d+$/.test(value)) {
    t = Number(value);
    if (t < EARLIEST_SINCE) {
      if (value.length === 4)
        throw new SinceError(
          `since=${value} reads as ${value} ms after 1970; for the year give a date, e.g. ${value}-01-01`,
        );
      if (t * 1000 >= EARLIEST_SINCE && t * 1000 <= now)
        throw new SinceError(
          `since=${value} reads as milliseconds, which is ${new Date(t).toISOString()}; for seconds since the epoch write ${value}000`,
        );
    }
  } else {
    t = isoTime(value);
    if (Number.isNaN(t)) throw new SinceError(`since must be ${FORMS}; got ${shown}`);
  }
  if (!(t >= EARLIEST_SINCE))
    throw new SinceError(
      `since=${shown} reaches back before ${new Date(EARLIEST_SINCE).toISOString()}; no measurement is that old`,
    );
  if (t > now)
    throw new SinceError(
      `since=${shown} is in the future (${Number.isSafeInteger(t) && t < 8.64e15 ? new Date(t).toISOString() : "beyond any date"}); the server's time is ${new Date(now).toISOString()}`,
    );
  return t;
}
