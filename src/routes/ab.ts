// A/B routing between the student and the teacher:
//   POST /v1/classify  routed (classify.ts hands the request here when a teacher is set): student or
//                      teacher by the client's sticky bucket (the id the Worker signed in a cookie;
//                      callers with a key may name theirs in X-Client-Id), or by X-Force-Arm for
//                      callers with the "force" right; the teacher's faults answered by the student,
//                      some student answers shadowed;
//   POST /v1/compare   both models on the same image at once (callers with the "compare" right),
//                      mounted at /v1 by compareRoutes.
// Anonymous clients reach the teacher only through the split and the shadow share. Every teacher-bound
// request takes one unit of the client's allowance and passes the circuit breaker (teacher-gate.ts).
import { type Context, Hono } from "hono";
import { endTime, setMetric, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { evidenceKey, identifyCaller, rateLimitKey, requireRight } from "../access/caller.ts";
import { usableAdminToken } from "../access/secrets.ts";
import { HttpError, badRequest, notFound } from "../http/errors.ts";
import { type Arm, type Fault, type RequestInfo, type RunRecord, isArm, toRow } from "../measurements/records.ts";
import { type Background, recordLater } from "../measurements/sink.ts";
import { requestIdOf } from "../middleware/request-id.ts";
import { noteRequest } from "../middleware/request-log.ts";
import { ModelLoadError } from "../models/store.ts";
import { type ArmResult, type ArmFailure, runRecord, runStudent } from "../routing/arms.ts";
import { Breakers } from "../routing/breaker.ts";
import { ClientIdError, clientTag, identifyClient } from "../routing/client.ts";
import { type RoutingSettings, SettingsError, loadSettings } from "../routing/settings.ts";
import {
  type AbBindings,
  type AbSetup,
  abSetup,
  checkSameLabels,
  misconfigured,
  sameLabels,
} from "../routing/setup.ts";
import { assignArm, draw } from "../routing/split.ts";
import { TeacherGate } from "../routing/teacher-gate.ts";
import { type Selection, rankPredictions } from "../models/predictions.ts";
import { type RouteContext, findModel, nameModel, selectionOf, unavailableError } from "./context.ts";
import { uploadedInputs } from "./upload.ts";

/** Request header that forces an arm ("student" or "teacher"). */
export const FORCE_ARM_HEADER = "X-Force-Arm";
/** Response header naming the arm that answered. */
export const ARM_HEADER = "X-Arm";
/** Response header naming why the teacher did not answer when the student answered in its place. */
export const FAULT_HEADER = "X-Teacher-Fault";
/** Retry-After of a 429: the period of the [[ratelimits]] binding in wrangler.toml. */
export const RATE_LIMIT_PERIOD_S = 60;
/**
 * How long a shadow's teacher call may run after the response: waitUntil allows 30 s, and the
 * teacher's row must still be sent in that time.
 */
export const SHADOW_BUDGET_MS = 25_000;

/** The teachers option as a function, whichever form it was given in. */
export const teachersOf = (teachers: AbRoutingOptions["teachers"]): (() => readonly ModelEntry[]) =>
  typeof teachers === "function" ? teachers : () => teachers;

export interface AbRoutingOptions {
  /**
   * The manifest entries of the models the teacher host serves (their input specs and labels), or a
   * function read on every request (models from R2: the manifest's current version).
   */
  teachers: readonly ModelEntry[] | (() => readonly ModelEntry[]);
  /** Overrides SHADOW_BUDGET_MS (tests). */
  shadowBudgetMs?: number;
}

/** What a client is told about a teacher fault; the details (addresses, bodies) stay in the log. */
const FAULT_MESSAGES: Record<Fault, string> = {
  timeout: "the teacher did not answer in time",
  unreachable: "the teacher could not be reached",
  http_error: "the teacher answered with an HTTP error",
  bad_response: "the teacher's answer is not a valid inference response",
  inference_error: "the model failed to run",
  rate_limited: "this client is over its allowance of teacher requests",
  circuit_open: "the teacher is failing; it is left alone for a cool-down",
  cut: "the teacher did not answer within the time left after the response",
};

export type AbContext = Context<{ Bindings: AbBindings }>;

function forcedArm(c: AbContext): Arm | undefined {
  const raw = c.req.header(FORCE_ARM_HEADER);
  if (raw === undefined) return undefined;
  const arm = raw.trim().toLowerCase();
  if (!isArm(arm)) throw badRequest(`${FORCE_ARM_HEADER} must be "student" or "teacher", got "${raw.slice(0, 40)}"`);
  return arm;
}

/** The execution context's waitUntil; app.request() in a test has none, and then work just runs. */
function background(c: AbContext): Background {
  try {
    return c.executionCtx;
  } catch {
    return { waitUntil: (work) => void work };
  }
}

/** A failed student run as the client sees it: the model's load error (503) or a bare 500. */
function studentFailure(result: ArmFailure): unknown {
  return result.error instanceof ModelLoadError ? unavailableError(result.error) : result.error;
}

const failureStatus = (result: ArmResult) => (result.ok ? 200 : result.error instanceof ModelLoadError ? 503 : 500);

function overTheLimit(c: AbContext, what: string): HttpError {
  c.header("Retry-After", String(RATE_LIMIT_PERIOD_S));
  return new HttpError(429, `${what}: this client is over its allowance of teacher requests; retry later`);
}

/** A/B routing over one app's lifetime (its circuit breakers live as long as it does). */
export interface AbRouter {
  /** This request's routing setup, or undefined when A/B routing is off (no teacher configured). */
  setup(c: AbContext): AbSetup | undefined;
  /** POST /v1/classify, routed between the arms. */
  classify(c: AbContext, setup: AbSetup): Promise<Response>;
  /** POST /v1/compare. */
  compare(c: AbContext): Promise<Response>;
}

export function abRouter({ store, limits }: RouteContext, options: AbRoutingOptions): AbRouter {
  const teachers = teachersOf(options.teachers);
  const shadowBudgetMs = options.shadowBudgetMs ?? SHADOW_BUDGET_MS;
  // Per isolate: the app is built once per isolate.
  const breakers = new Breakers();

  async function settingsOf(c: AbContext, setup: AbSetup): Promise<RoutingSettings> {
    try {
      return (await loadSettings(setup.db, c.env as Record<string, unknown>, (work) => background(c).waitUntil(work)))
        .settings;
    } catch (err) {
      if (err instanceof SettingsError) throw misconfigured(err.message);
      throw err;
    }
  }

  function gate(setup: AbSetup, settings: RoutingSettings, clientKey: string): TeacherGate {
    return new TeacherGate({
      endpoint: { url: setup.teacherUrl, model: setup.teacher.name, ...(setup.auth ? { auth: setup.auth } : {}) },
      entry: setup.teacher,
      breaker: breakers.for(setup.teacherUrl, setup.teacher.name),
      breakerSettings: { faults: settings.breakerFaults, cooldownMs: settings.breakerCooldownMs },
      timeoutMs: settings.teacherTimeoutMs,
      ...(setup.limiter ? { limiter: setup.limiter } : {}),
      clientKey,
    });
  }

  /** The upload as input tensors for the models given; the image itself is gone when this returns. */
  async function inputs(c: AbContext, models: ModelEntry[]) {
    startTime(c, "decode");
    const out = await uploadedInputs(c, models, limits);
    endTime(c, "decode");
    return out;
  }

  const answer = (r: Extract<ArmResult, { ok: true }>, selection: Selection) => ({
    model: { name: r.entry.name, version: r.entry.version },
    latencyMs: r.latencyMs,
    predictions: rankPredictions(r.probabilities, r.entry, selection),
  });

  const setup = (c: AbContext) => abSetup(c.env, teachers());

  async function classify(c: AbContext, setup: AbSetup): Promise<Response> {
    const received = Date.now();
    const student = store.defaultStudent();
    if (!student) throw notFound("this server hosts no default student model");
    checkSameLabels(student, setup.teacher);
    const forced = forcedArm(c);
    // Credentials, when sent, are checked whatever the request: a trusted caller may name its client.
    const caller = await identifyCaller(c, setup.db, usableAdminToken(c.env));
    if (forced) requireRight(caller, "force", FORCE_ARM_HEADER);
    let clientId: string;
    try {
      clientId = await identifyClient(c, setup.clientSecret, caller.kind !== "anonymous");
    } catch (err) {
      if (err instanceof ClientIdError) throw badRequest(err.message);
      throw err;
    }
    const client = await clientTag(evidenceKey(c, caller, clientId), setup.clientSecret);
    const selection = selectionOf(c, student);
    const settings = await settingsOf(c, setup);
    const { arm, reason } = await assignArm(clientId, settings.studentPercent, setup.experiment, forced);
    const teacher = gate(setup, settings, rateLimitKey(c, caller));

    // Teacher-bound work takes the client's allowance before anything is decoded.
    let refused: ArmResult | undefined;
    if (arm === "teacher" && !(await teacher.allowance())) {
      if (forced) throw overTheLimit(c, `${FORCE_ARM_HEADER}: teacher`);
      refused = teacher.limited();
    }
    const shadowDrawn = arm === "student" && draw(settings.shadowPercent);
    const shadowAllowed = shadowDrawn && (await teacher.allowance());
    const withTeacher = arm === "teacher" || shadowDrawn;
    const {
      image,
      inputs: [studentInput, teacherInput],
    } = await inputs(c, withTeacher ? [student, setup.teacher] : [student]);

    const runs: RunRecord[] = [];
    let served: ArmResult;
    if (arm === "teacher") {
      const t = refused ?? (await teacher.run(teacherInput!));
      if (t.latencyMs > 0) setMetric(c, "teacher", t.latencyMs); // 0: not asked (over the limit, breaker open)
      if (t.ok) {
        served = t;
      } else {
        runs.push(runRecord(t, false));
        c.header(FAULT_HEADER, t.fault);
        noteRequest(c, { teacherFault: t.fault, teacherFaultDetail: t.detail });
        served = await runStudent(store, student, studentInput!);
      }
    } else {
      served = await runStudent(store, student, studentInput!);
    }
    runs.push(runRecord(served, true));
    if (served.arm === "student") setMetric(c, "student", served.latencyMs);
    noteRequest(c, {
      arm: served.arm,
      model: { name: served.entry.name, version: served.entry.version },
      inferenceMs: served.latencyMs,
    });

    const shadow = shadowDrawn && served.ok;
    const request: RequestInfo = {
      requestId: requestIdOf(c),
      ts: received,
      mode: shadow ? "shadow" : "ab",
      reason,
      status: failureStatus(served),
      client,
    };
    // The runs so far are recorded now, whatever becomes of a shadow: its teacher row follows on its own.
    recordLater(
      background(c),
      setup.sink,
      runs.map((r) => toRow(request, r)),
    );
    if (shadow) {
      const shadowRun = shadowAllowed ? teacher.run(teacherInput!, shadowBudgetMs) : Promise.resolve(teacher.limited());
      recordLater(
        background(c),
        setup.sink,
        shadowRun.then((t) => [toRow({ ...request, reason: "shadow" }, runRecord(t, false))]),
      );
    }

    if (!served.ok) throw studentFailure(served);
    c.header(ARM_HEADER, served.arm);
    nameModel(c, served.entry);
    const { model, predictions } = answer(served, selection);
    return c.json({ model, image, predictions });
  }

  async function compare(c: AbContext): Promise<Response> {
    const setup = abSetup(c.env, teachers());
    if (!setup)
      throw new HttpError(
        503,
        "POST /v1/compare needs a teacher, and this server has none",
        "set TEACHER_URL, with the teacher's entry in models/manifest.json",
      );
    const caller = await identifyCaller(c, setup.db, usableAdminToken(c.env));
    requireRight(caller, "compare", "POST /v1/compare");
    const received = Date.now();
    const named = c.req.query("model");
    const student = named === undefined ? store.defaultStudent() : findModel(store, named);
    if (!student) throw notFound("this server hosts no default student model");
    if (student.role !== "student") throw badRequest(`model "${student.name}" is not a student`);
    // The default student is the operator's choice (misconfigured when it does not fit); a named one the caller's.
    if (named === undefined) checkSameLabels(student, setup.teacher);
    else if (!sameLabels(student, setup.teacher)) {
      throw new HttpError(
        422,
        `model "${student.name}" cannot be compared with the teacher "${setup.teacher.name}": their labels differ`,
      );
    }
    const selection = selectionOf(c, student);
    const settings = await settingsOf(c, setup);
    const teacher = gate(setup, settings, rateLimitKey(c, caller));
    if (!(await teacher.allowance())) throw overTheLimit(c, "POST /v1/compare");
    const {
      image,
      inputs: [studentInput, teacherInput],
    } = await inputs(c, [student, setup.teacher]);

    // The teacher's request goes out first, so its network time overlaps the student's run.
    const teacherRun = teacher.run(teacherInput!);
    const [s, t] = await Promise.all([runStudent(store, student, studentInput!), teacherRun]);
    setMetric(c, "student", s.latencyMs);
    setMetric(c, "teacher", t.latencyMs);
    const request: RequestInfo = {
      requestId: requestIdOf(c),
      ts: received,
      mode: "compare",
      reason: "compare",
      status: failureStatus(s),
    };
    recordLater(background(c), setup.sink, [toRow(request, runRecord(s, true)), toRow(request, runRecord(t, t.ok))]);
    if (!t.ok) noteRequest(c, { teacherFault: t.fault, teacherFaultDetail: t.detail });
    if (!s.ok) throw studentFailure(s);
    if (!t.ok) c.header(FAULT_HEADER, t.fault);
    return c.json({
      image,
      student: answer(s, selection),
      teacher: t.ok
        ? answer(t, selection)
        : {
            model: { name: t.entry.name, version: t.entry.version },
            latencyMs: t.latencyMs,
            fault: t.fault,
            error: FAULT_MESSAGES[t.fault],
          },
      agree: t.ok ? s.top1 === t.top1 : null,
      latencyRatio: t.ok && t.latencyMs > 0 ? s.latencyMs / t.latencyMs : null,
    });
  }

  return { setup, classify, compare };
}

/** POST /v1/compare, mounted at /v1. */
export function compareRoutes(ab: AbRouter): Hono<{ Bindings: AbBindings }> {
  const app = new Hono<{ Bindings: AbBindings }>();
  app.post("/compare", (c) => ab.compare(c));
  return app;
}
