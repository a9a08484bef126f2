// GET /v1/report's figures, computed in D1: per arm and model, the run count, error rate, latency
// percentiles (nearest rank, over successful runs), top-1 agreement with the teacher (over requests
// where both ran and succeeded) and the student/teacher ratio of median latencies; and the D1 write
// transactions that recorded them.
//
// Each figure adds the raw rows in the window to the hourly aggregates (rollup.ts) of the hours that
// start in it, so a window reaching back past the retention period still counts everything. Over
// aggregated hours, latencies come from a histogram rounded to two significant figures.
import type { D1Database } from "@cloudflare/workers-types";
import type { Arm } from "../routing/split.ts";
import type { Fault } from "./records.ts";

export interface ArmModelReport {
  arm: Arm;
  model: string;
  count: number;
  /** Runs whose prediction the client received. */
  served: number;
  errors: number;
  errorRate: number;
  faults: Partial<Record<Fault, number>>;
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  /** Student rows: requests where this student and the teacher both ran, and the share that agreed. */
  agreement: { pairs: number; top1: number | null } | null;
  /** Student rows: this model's p50 over the teacher's p50. */
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
}

// Nearest-rank percentile p over weighted values (a raw latency weighs 1, a histogram bucket its
// count): the smallest value whose cumulative weight c satisfies c >= p * n, written as c * 100 >= P * n
// so that no floating-point product decides a rank.
const pct = (p: number) => `MIN(CASE WHEN cum * 100 >= ${p} * n THEN v END)`;

// ?1 = since, ?2 = until. An aggregated hour counts when it starts in the window.
const HOURS = "hour >= ?1 AND hour < ?2";

const ROWS_SQL = `
WITH w AS (SELECT * FROM runs WHERE ts >= ?1 AND ts < ?2),
lat AS (
  SELECT arm, model, latency_ms AS v, 1 AS weight FROM w WHERE ok = 1
  UNION ALL SELECT arm, model, latency_ms, n FROM run_hour_latency WHERE ${HOURS}
),
ranked AS (
  SELECT arm, model, v,
    SUM(weight) OVER (PARTITION BY arm, model ORDER BY v ROWS UNBOUNDED PRECEDING) AS cum,
    SUM(weight) OVER (PARTITION BY arm, model) AS n
  FROM lat
),
pct AS (SELECT arm, model, ${pct(50)} AS p50, ${pct(95)} AS p95, ${pct(99)} AS p99 FROM ranked GROUP BY arm, model),
teacher_ranked AS (
  SELECT v, SUM(weight) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) AS cum, SUM(weight) OVER () AS n
  FROM lat WHERE arm = 'teacher'
),
teacher_p50 AS (SELECT ${pct(50)} AS p50 FROM teacher_ranked),
agg AS (
  SELECT arm, model, SUM(count) AS count, SUM(served) AS served, SUM(errors) AS errors FROM (
    SELECT arm, model, COUNT(*) AS count, SUM(served) AS served, SUM(ok = 0) AS errors FROM w GROUP BY arm, model
    UNION ALL SELECT arm, model, count, served, errors FROM run_hours WHERE ${HOURS} AND count > 0
  ) GROUP BY arm, model
),
pairs AS (
  SELECT model, SUM(pairs) AS pairs, SUM(agreeing) AS agreeing FROM (
    SELECT s.model, COUNT(*) AS pairs, SUM(s.top1 = t.top1) AS agreeing
    FROM w s JOIN w t ON t.request_id = s.request_id AND t.arm = 'teacher' AND t.ok = 1
    WHERE s.arm = 'student' AND s.ok = 1
    GROUP BY s.model
    UNION ALL SELECT model, pairs, agreeing FROM run_hours WHERE ${HOURS} AND arm = 'student' AND pairs > 0
  ) GROUP BY model
)
SELECT agg.arm, agg.model, agg.count, agg.served, agg.errors, pct.p50, pct.p95, pct.p99,
  pairs.pairs, pairs.agreeing, (SELECT p50 FROM teacher_p50) AS teacher_p50
FROM agg
LEFT JOIN pct ON pct.arm = agg.arm AND pct.model = agg.model
LEFT JOIN pairs ON agg.arm = 'student' AND pairs.model = agg.model
ORDER BY agg.arm, agg.model`;

const FAULTS_SQL = `
SELECT arm, model, fault, SUM(n) AS n FROM (
  SELECT arm, model, fault, COUNT(*) AS n FROM runs WHERE ts >= ?1 AND ts < ?2 AND fault IS NOT NULL GROUP BY arm, model, fault
  UNION ALL SELECT arm, model, fault, n FROM run_hour_faults WHERE ${HOURS}
) GROUP BY arm, model, fault`;

const TOTALS_SQL = `
SELECT
  (SELECT COUNT(DISTINCT request_id) FROM runs WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(requests), 0) FROM request_hours WHERE ${HOURS}) AS requests,
  (SELECT COUNT(DISTINCT CASE WHEN arm = 'teacher' AND mode = 'ab' AND ok = 0 THEN request_id END) FROM runs WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(fallbacks), 0) FROM request_hours WHERE ${HOURS}) AS fallbacks,
  (SELECT COUNT(*) FROM writes WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(transactions), 0) FROM request_hours WHERE ${HOURS}) AS transactions,
  (SELECT COALESCE(SUM(rows), 0) FROM writes WHERE ts >= ?1 AND ts < ?2)
    + (SELECT COALESCE(SUM(written_rows), 0) FROM request_hours WHERE ${HOURS}) AS written_rows`;

interface Row {
  arm: Arm;
  model: string;
  count: number;
  served: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  pairs: number | null;
  agreeing: number | null;
  teacher_p50: number | null;
}

export async function buildReport(db: D1Database, since: number, until: number): Promise<Report> {
  const [rows, faults, totals] = await db.batch([
    db.prepare(ROWS_SQL).bind(since, until),
    db.prepare(FAULTS_SQL).bind(since, until),
    db.prepare(TOTALS_SQL).bind(since, until),
  ]);
  const faultsOf = new Map<string, Partial<Record<Fault, number>>>();
  for (const f of faults!.results as { arm: string; model: string; fault: Fault; n: number }[]) {
    const key = `${f.arm}\u0000${f.model}`;
    faultsOf.set(key, { ...faultsOf.get(key), [f.fault]: f.n });
  }
  const total = totals!.results[0] as { requests: number; fallbacks: number; transactions: number; written_rows: number };
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
    rows: (rows!.results as unknown as Row[]).map((r) => ({
      arm: r.arm,
      model: r.model,
      count: r.count,
      served: r.served,
      errors: r.errors,
      errorRate: r.count > 0 ? r.errors / r.count : 0,
      faults: faultsOf.get(`${r.arm}\u0000${r.model}`) ?? {},
      latencyMs: { p50: r.p50, p95: r.p95, p99: r.p99 },
      agreement: r.arm === "student" ? { pairs: r.pairs ?? 0, top1: r.pairs ? (r.agreeing ?? 0) / r.pairs : null } : null,
      latencyRatio: r.arm === "student" && r.p50 !== null && r.teacher_p50 ? r.p50 / r.teacher_p50 : null,
    })),
  };
}

const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `since` as an ISO 8601 time, milliseconds since the epoch, or a duration back from now ("15m",
 * "2h", "7d"); absent means from the beginning. Returns undefined when it is none of those.
 */
export function parseSince(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value === "") return 0;
  const duration = DURATION.exec(value);
  if (duration) return now - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS];
  if (/^\d+$/.test(value)) return Number(value);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
