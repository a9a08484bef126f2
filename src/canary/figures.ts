// What the canary judges a step by, computed in D1 from the raw run rows of a window: the student
// under test (its model and version) on the split's traffic only (forced and compare requests are
// someone's choice, not the split's), and the teacher's run on the same requests (a shadow, or the
// teacher arm the student answered for) unless the client's allowance kept the teacher out. An open
// breaker counts as a teacher fault: it opened on the teacher's faults. Raw rows only: a window is minutes, far inside the
// retention before the roll-up folds them.
//
// Evidence is weighed per client: of one client's split requests in the window (its tag in the run
// rows: its address, or the client a trusted caller names; access/caller.ts evidenceKey) only the
// first PER_CLIENT count, for every figure. A judgement needs minSamples pairs, so one client holds
// at most PER_CLIENT / minSamples of the evidence any decision rests on (5% at the defaults).
import type { D1Database } from "@cloudflare/workers-types";
import { RAN } from "../measurements/rollup.ts";
import type { CanaryFigures } from "./state.ts";

/** Split requests of one client that count in a window. */
export const PER_CLIENT = 5;

// ?1 since, ?2 until, ?3 model, ?4 version, ?5 PER_CLIENT. p99 is nearest rank, as in the report. A
// row without a client (written before clients were recorded) is a client of its own.
const FIGURES_SQL = `
WITH split AS (
  SELECT request_id, ts, ok, fault, top1, latency_ms, COALESCE(client, request_id) AS who,
    ROW_NUMBER() OVER (PARTITION BY COALESCE(client, request_id) ORDER BY ts, request_id) AS nth
  FROM runs
  WHERE ts >= ?1 AND ts < ?2 AND arm = 'student' AND reason = 'split' AND model = ?3 AND version = ?4
),
s AS (SELECT request_id, ts, ok, fault, top1, latency_ms, who FROM split WHERE nth <= ?5),
paired AS (
  SELECT s.ok AS s_ok, s.top1 AS s_top1, t.ok AS t_ok, t.top1 AS t_top1
  FROM s JOIN runs t ON t.request_id = s.request_id AND t.ts = s.ts AND t.arm = 'teacher'
  -- Over its client's allowance the teacher was not asked: no evidence, and no fault of the teacher.
  WHERE t.fault IS NOT 'rate_limited'
),
lat AS (SELECT latency_ms AS v, ROW_NUMBER() OVER (ORDER BY latency_ms) AS rank, COUNT(*) OVER () AS n FROM s WHERE ${RAN})
SELECT
  (SELECT COUNT(*) FROM s) AS runs,
  (SELECT COUNT(DISTINCT who) FROM s) AS clients,
  (SELECT COALESCE(SUM(ok = 0), 0) FROM s) AS errors,
  (SELECT MIN(CASE WHEN rank * 100 >= 99 * n THEN v END) FROM lat) AS p99,
  (SELECT COUNT(*) FROM paired) AS pairs,
  (SELECT COALESCE(SUM(t_ok = 0), 0) FROM paired) AS teacher_faults,
  (SELECT COALESCE(SUM(s_ok = 1 AND t_ok = 1), 0) FROM paired) AS compared,
  (SELECT COALESCE(SUM(s_ok = 1 AND t_ok = 1 AND s_top1 = t_top1), 0) FROM paired) AS agreeing`;

const share = (part: number, whole: number) => (whole > 0 ? part / whole : null);

export async function canaryFigures(
  db: D1Database,
  model: string,
  version: string,
  since: number,
  until: number,
): Promise<CanaryFigures> {
  const r = (await db.prepare(FIGURES_SQL).bind(since, until, model, version, PER_CLIENT).first<{
    runs: number;
    clients: number;
    errors: number;
    p99: number | null;
    pairs: number;
    teacher_faults: number;
    compared: number;
    agreeing: number;
  }>())!;
  return {
    since,
    until,
    studentRuns: r.runs,
    clients: r.clients,
    studentErrors: r.errors,
    errorRate: share(r.errors, r.runs),
    p99Ms: r.p99,
    pairs: r.pairs,
    teacherFaults: r.teacher_faults,
    teacherFaultRate: share(r.teacher_faults, r.pairs),
    comparedPairs: r.compared,
    agreement: share(r.agreeing, r.compared),
  };
}
