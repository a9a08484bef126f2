// The canary controller: each cron tick judges the current step over its window and promotes, holds,
// completes or rolls back (to 0%); admin calls start, pause, resume and stop it. Every one of these is
// a decision written with the state in one D1 transaction (state.ts).
import type { D1Database } from "@cloudflare/workers-types";
import { HttpError } from "../http/errors.ts";
import { refreshSettings } from "../routing/settings.ts";
import { canaryFigures } from "./figures.ts";
import { judge } from "./judge.ts";
import { readCanarySettings } from "./settings.ts";
import {
  type CanaryAction,
  type CanaryChange,
  type CanaryState,
  type CanaryStatus,
  readCanaryState,
  writeCanaryChange,
} from "./state.ts";

export const MINUTE_MS = 60_000;

/** An admin call that does not fit the canary's state: a 409 with the reason. */
export class CanaryConflict extends HttpError {
  override name = "CanaryConflict";
  constructor(message: string) {
    super(409, message);
  }
}

export interface TickResult {
  action: CanaryAction;
  reason: string;
  percentFrom: number;
  percentTo: number;
}

async function apply(db: D1Database, change: CanaryChange): Promise<boolean> {
  const written = await writeCanaryChange(db, change);
  // This isolate routes on the new share at once; the others within the settings cache's period.
  if (written && change.setsStudentPercent) await refreshSettings(db);
  return written;
}

/** One cron tick at `now`: the decision made, or undefined when the canary is not running. */
export async function canaryTick(db: D1Database, now: number): Promise<TickResult | undefined> {
  const state = await readCanaryState(db);
  if (state.status !== "running" || state.model === null || state.version === null) return undefined;
  const { settings } = await readCanarySettings(db);
  const since = Math.max(now - settings.windowMinutes * MINUTE_MS, state.stepStartedAt);
  const figures = await canaryFigures(db, state.model, state.version, since, now + 1);
  const verdict = judge(figures, settings, state.percent);
  const base = { from: state, now, actor: "cron" as const, reason: verdict.reason, figures, settings };
  const change: CanaryChange =
    verdict.action === "rollback"
      ? { ...base, action: "rollback", to: { status: "rolled_back", percent: 0 }, setsStudentPercent: true }
      : verdict.action === "promote"
        ? {
            ...base,
            action: "promote",
            to: { percent: verdict.percentTo, stepStartedAt: now },
            setsStudentPercent: true,
          }
        : verdict.action === "complete"
          ? { ...base, action: "complete", to: { status: "done" }, setsStudentPercent: false }
          : { ...base, action: "hold", to: {}, setsStudentPercent: false };
  if (!(await apply(db, change))) {
    console.log("canary tick: the state changed while it was judged (an admin call); nothing written");
    return undefined;
  }
  return {
    action: change.action,
    reason: change.reason,
    percentFrom: state.percent,
    percentTo: change.to.percent ?? state.percent,
  };
}

function requireStatus(state: CanaryState, allowed: CanaryStatus[], what: string): void {
  if (!allowed.includes(state.status)) {
    throw new CanaryConflict(
      `cannot ${what} the canary: it is ${state.status.replace("_", " ")}${state.status === "running" || state.status === "paused" ? ` at ${state.percent}%` : ""} (${what} needs ${allowed.join(" or ")})`,
    );
  }
}

async function adminChange(
  db: D1Database,
  state: CanaryState,
  change: Omit<CanaryChange, "from" | "actor">,
): Promise<void> {
  if (!(await apply(db, { ...change, from: state, actor: "admin" })))
    throw new CanaryConflict("the canary changed while this call ran; read GET /v1/canary and try again");
}

/** Starts the canary for a student at the first step. */
export async function startCanary(
  db: D1Database,
  student: { name: string; version: string },
  now: number,
): Promise<void> {
  const state = await readCanaryState(db);
  requireStatus(state, ["off", "rolled_back", "done"], "start");
  const { settings } = await readCanarySettings(db);
  const first = settings.steps[0]!;
  await adminChange(db, state, {
    now,
    action: "start",
    reason: `started for ${student.name} ${student.version} at ${first}% (steps ${settings.steps.join(", ")})`,
    to: { status: "running", model: student.name, version: student.version, percent: first, stepStartedAt: now },
    setsStudentPercent: true,
    settings,
  });
}

/** Stops the cron's decisions; the share stays where it is. */
export async function pauseCanary(db: D1Database, now: number): Promise<void> {
  const state = await readCanaryState(db);
  requireStatus(state, ["running"], "pause");
  await adminChange(db, state, {
    now,
    action: "pause",
    reason: `paused at ${state.percent}%`,
    to: { status: "paused" },
    setsStudentPercent: false,
  });
}

/** Runs again from the step it was paused at, with the share set back to it and fresh evidence. */
export async function resumeCanary(db: D1Database, now: number): Promise<void> {
  const state = await readCanaryState(db);
  requireStatus(state, ["paused"], "resume");
  await adminChange(db, state, {
    now,
    action: "resume",
    reason: `resumed at ${state.percent}%`,
    to: { status: "running", stepStartedAt: now },
    setsStudentPercent: true,
  });
}

/** Ends the canary; the share stays where it is (PATCH /v1/config changes it). */
export async function stopCanary(db: D1Database, now: number): Promise<void> {
  const state = await readCanaryState(db);
  requireStatus(state, ["running", "paused"], "stop");
  await adminChange(db, state, {
    now,
    action: "stop",
    reason: `stopped at ${state.percent}%; studentPercent stays at ${state.percent}`,
    to: { status: "off" },
    setsStudentPercent: false,
  });
}
