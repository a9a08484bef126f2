// The canary's state and decision log in D1 (migrations/0005_canary.sql). Every change is one D1
// transaction: the state, the decision that explains it and, when the share of clients on the
// student moves, the studentPercent override. Each change takes the state from the revision it read
// (its token): a writer that read an older state changes nothing and is told so.
import type { D1Database, D1PreparedStatement } from "@cloudflare/workers-types";
import { HttpError } from "../http/errors.ts";
import type { CanarySettings } from "./settings.ts";

export type CanaryStatus = "off" | "running" | "paused" | "rolled_back" | "done";
export type CanaryAction = "start" | "promote" | "hold" | "rollback" | "complete" | "pause" | "resume" | "stop";
export type CanaryActor = "cron" | "admin";

export interface CanaryState {
  status: CanaryStatus;
  /** The student under test and its version (the default student when it started). */
  model: string | null;
  version: string | null;
  /** The share of clients it has put on the student. */
  percent: number;
  /** When the current step began (evidence counts from here). */
  stepStartedAt: number;
  updatedAt: number;
  /** The revision read; a write must name it. */
  token: string;
}

/** What a window of traffic showed (figures.ts). */
export interface CanaryFigures {
  since: number;
  until: number;
  /** The student's runs on the split's traffic (at most PER_CLIENT per client), and how many failed. */
  studentRuns: number;
  /** The clients those runs came from (figures.ts); absent in decisions from before it was recorded. */
  clients?: number;
  studentErrors: number;
  errorRate: number | null;
  /** p99 of those runs that reached the model (failures included). */
  p99Ms: number | null;
  /** Split requests the student answered and the teacher was asked about (shadow, or a fallback). */
  pairs: number;
  teacherFaults: number;
  teacherFaultRate: number | null;
  /** Pairs where both answered, and the share whose top-1 agreed. */
  comparedPairs: number;
  agreement: number | null;
}

export interface CanaryDecision {
  id: number;
  at: string;
  action: CanaryAction;
  actor: CanaryActor;
  model: string | null;
  version: string | null;
  percentFrom: number;
  percentTo: number;
  reason: string;
  figures: CanaryFigures | null;
  settings: CanarySettings | null;
  /** Ticks this row stands for: holds of one step share a row (its figures are the latest tick's). */
  repeats: number;
  /** A shared hold row: when the step began holding (`at` is the latest tick). */
  firstAt: string | null;
}

interface StateRow {
  status: CanaryStatus;
  model: string | null;
  version: string | null;
  percent: number;
  step_started_at: number;
  updated_at: number;
  token: string;
}

export async function readCanaryState(db: D1Database): Promise<CanaryState> {
  const row = await db
    .prepare(
      "SELECT status, model, version, percent, step_started_at, updated_at, token FROM canary_state WHERE id = 1",
    )
    .first<StateRow>();
  if (!row) throw new Error("canary_state has no row: apply migrations/0005_canary.sql");
  return {
    status: row.status,
    model: row.model,
    version: row.version,
    percent: row.percent,
    stepStartedAt: row.step_started_at,
    updatedAt: row.updated_at,
    token: row.token,
  };
}

interface DecisionRow {
  id: number;
  ts: number;
  action: CanaryAction;
  actor: CanaryActor;
  model: string | null;
  version: string | null;
  percent_from: number;
  percent_to: number;
  reason: string;
  figures: string | null;
  settings: string | null;
  first_ts: number | null;
  repeats: number;
}

/** The newest decisions first. */
export async function readCanaryDecisions(db: D1Database, limit: number): Promise<CanaryDecision[]> {
  const { results } = await db
    .prepare("SELECT * FROM canary_decisions ORDER BY id DESC LIMIT ?1")
    .bind(limit)
    .all<DecisionRow>();
  return results.map((r) => ({
    id: r.id,
    at: new Date(r.ts).toISOString(),
    action: r.action,
    actor: r.actor,
    model: r.model,
    version: r.version,
    percentFrom: r.percent_from,
    percentTo: r.percent_to,
    reason: r.reason,
    figures: r.figures === null ? null : (JSON.parse(r.figures) as CanaryFigures),
    settings: r.settings === null ? null : (JSON.parse(r.settings) as CanarySettings),
    repeats: r.repeats,
    firstAt: r.first_ts === null ? null : new Date(r.first_ts).toISOString(),
  }));
}

export interface CanaryChange {
  /** The state read; the change applies only while it is still the state in D1. */
  from: CanaryState;
  now: number;
  action: CanaryAction;
  actor: CanaryActor;
  reason: string;
  /** The new state's fields (unchanged ones may be left out). */
  to: Partial<Pick<CanaryState, "status" | "model" | "version" | "percent" | "stepStartedAt">>;
  /** Write studentPercent = the new percent (a start, promotion, rollback, resume). */
  setsStudentPercent: boolean;
  figures?: CanaryFigures;
  settings?: CanarySettings;
}

/** Applies a change in one transaction; false when the state changed since it was read (nothing written). */
export async function writeCanaryChange(db: D1Database, change: CanaryChange): Promise<boolean> {
  const { from, now, to } = change;
  const next = { ...from, ...to };
  const token = crypto.randomUUID();
  // The statements after the UPDATE run only while the token is this change's.
  const ours = (param: string) => `(SELECT token FROM canary_state WHERE id = 1) = ${param}`;
  const figures = change.figures ? JSON.stringify(change.figures) : null;
  const settings = change.settings ? JSON.stringify(change.settings) : null;
  // A cron hold after a cron hold of the same step (student, version, share) updates that row
  // (migration 0006); the INSERT then finds it and writes nothing.
  const cronHold = change.action === "hold" && change.actor === "cron";
  const sharedHold = `EXISTS (SELECT 1 FROM canary_decisions WHERE id = (SELECT MAX(id) FROM canary_decisions)
    AND action = 'hold' AND actor = 'cron' AND model IS ?4 AND version IS ?5 AND percent_to = ?7)`;
  const decision = [
    now,
    change.action,
    change.actor,
    next.model,
    next.version,
    from.percent,
    next.percent,
    change.reason,
    figures,
    settings,
    token,
  ];
  const statements: D1PreparedStatement[] = [
    db
      .prepare(
        "UPDATE canary_state SET status = ?1, model = ?2, version = ?3, percent = ?4, step_started_at = ?5, updated_at = ?6, token = ?7 WHERE id = 1 AND token = ?8",
      )
      .bind(next.status, next.model, next.version, next.percent, next.stepStartedAt, now, token, from.token),
  ];
  if (cronHold) {
    statements.push(
      db
        .prepare(
          // ?2, ?3 and ?6 are bound for the INSERT's sake; the columns on the right are the row's old values.
          `UPDATE canary_decisions SET first_ts = COALESCE(first_ts, ts), ts = ?1, repeats = repeats + 1, reason = ?8, figures = ?9, settings = ?10
           WHERE id = (SELECT MAX(id) FROM canary_decisions) AND ${sharedHold} AND ${ours("?11")}`,
        )
        .bind(...decision),
    );
  }
  statements.push(
    db
      .prepare(
        `INSERT INTO canary_decisions (ts, action, actor, model, version, percent_from, percent_to, reason, figures, settings)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE ${ours("?11")}${cronHold ? ` AND NOT ${sharedHold}` : ""}`,
      )
      .bind(...decision),
  );
  if (change.setsStudentPercent) {
    // PATCH /v1/config's upsert of the same row, run only while this change holds the token.
    statements.push(
      db
        .prepare(
          `INSERT INTO settings (key, value, updated_at) SELECT 'studentPercent', ?1, ?2 WHERE ${ours("?3")}
           ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        )
        .bind(String(next.percent), now, token),
    );
  }
  const [updated] = await db.batch(statements);
  return (updated!.meta.changes ?? 0) === 1;
}

/**
 * A running canary owns studentPercent: an admin's change of it (PATCH /v1/config, the dashboard's
 * form) answers 409 until the canary is paused or stopped.
 */
export async function assertSplitFree(db: D1Database): Promise<void> {
  const state = await readCanaryState(db);
  if (state.status === "running")
    throw new HttpError(
      409,
      `the canary sets studentPercent while it runs (now ${state.percent}%); pause or stop it first (POST /v1/canary/pause)`,
    );
}
