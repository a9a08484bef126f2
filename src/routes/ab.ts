// The A/B surface, mounted at /v1 ahead of the plain classifier:
//   POST /v1/classify  routed: student or teacher by the client's sticky bucket (or X-Force-Arm),
//                      the teacher's faults answered by the student, some student answers shadowed;
//   POST /v1/compare   both models on the same image at once.
// Without a teacher (TEACHER_URL and its manifest entry), /v1/classify falls through to the
// student-only classifier.
import type { D1Database } from "@cloudflare/workers-types";
import { type Context, Hono } from "hono";
import { setMetric } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { HttpError, badRequest, notFound } from "../errors.ts";
import { decodeImage } from "../image/decode.ts";
import type { Image, ImageFormat } from "../image/types.ts";
import { ModelLoadError } from "../models/store.ts";
import { type ArmResult, runRecord, runStudent, runTeacher } from "../routing/arms.ts";
import { ClientIdError, identifyClient } from "../routing/client.ts";
import { type Fault, type Mode, type RequestRecord, type RunRecord, recordAfterResponse } from "../routing/measurements.ts";
import { SettingsError, loadSettings } from "../routing/settings.ts";
import { type AbBindings, type AbSetup, abSetup, checkSameLabels } from "../routing/setup.ts";
import { type Arm, assignArm, draw, isArm } from "../routing/split.ts";
import { imageBytes, rankPredictions, topK } from "./classify.ts";
import { type RouteContext, findModel, nameModel } from "./context.ts";

/** Request header that forces an arm ("student" or "teacher"). */
export const FORCE_ARM_HEADER = "X-Force-Arm";
/** Response header naming the arm that answered. */
export const ARM_HEADER = "X-Arm";
/** Response header naming the teacher's fault when the student answered in its place. */
export const FAULT_HEADER = "X-Teacher-Fault";

/** What a client is told about a teacher fault; the details (addresses, bodies) stay in the log. */
const FAULT_MESSAGES: Record<Fault, string> = {
  timeout: "the teacher did not answer within TEACHER_TIMEOUT_MS",
  unreachable: "the teacher could not be reached",
  http_error: "the teacher answered with an HTTP error",
  bad_response: "the teacher's answer is not a valid inference response",
  inference_error: "the model failed to run",
};

type AbContext = Context<{ Bindings: AbBindings }>;

function forcedArm(c: AbContext): Arm | undefined {
  const raw = c.req.header(FORCE_ARM_HEADER);
  if (raw === undefined) return undefined;
  const arm = raw.trim().toLowerCase();
  if (!isArm(arm)) throw badRequest(`${FORCE_ARM_HEADER} must be "student" or "teacher", got "${raw.slice(0, 40)}"`);
  return arm;
}

/** Runs after the response when the platform allows it (always in a Worker). */
function afterResponse(c: AbContext, db: D1Database, work: Promise<RequestRecord | undefined>): void {
  let ctx: { waitUntil(p: Promise<unknown>): void };
  try {
    ctx = c.executionCtx;
  } catch {
    ctx = { waitUntil: (p) => void p }; // app.request() in a test without an execution context
  }
  recordAfterResponse(ctx, db, work);
}

/** A failed student run as the client sees it: the model's load error (503) or a bare 500. */
function studentFailure(result: Extract<ArmResult, { ok: false }>): HttpError | unknown {
  return result.error instanceof ModelLoadError ? new HttpError(503, result.error.message) : result.error;
}

const failureStatus = (result: ArmResult) => (result.ok ? 200 : result.error instanceof ModelLoadError ? 503 : 500);

export function abRoutes({ store, limits }: RouteContext, teachers: readonly ModelEntry[]): Hono<{ Bindings: AbBindings }> {
  const app = new Hono<{ Bindings: AbBindings }>();
  const imageLimits = { maxSide: limits.maxImageSide, maxPixels: limits.maxImagePixels };

  /** Everything a routed request needs before any model runs; bad input fails here, unrecorded. */
  async function prepare(c: AbContext, setup: AbSetup, student: ModelEntry) {
    checkSameLabels(student, setup.teacher);
    const k = topK(c, student.labels.length);
    const { settings } = await loadSettings(setup.db, c.env as Record<string, unknown>).catch((err: unknown) => {
      throw err instanceof SettingsError ? new HttpError(503, `A/B routing is misconfigured: ${err.message}`) : err;
    });
    const { image, format } = await decodeImage(await imageBytes(c), imageLimits);
    const endpoint = { url: setup.teacherUrl, model: setup.teacher.name, timeoutMs: settings.teacherTimeoutMs };
    return { k, settings, image, format, endpoint };
  }

  const imageInfo = (image: Image, format: ImageFormat) => ({ format, width: image.width, height: image.height });
  const answer = (r: Extract<ArmResult, { ok: true }>, k: number) => ({
    model: { name: r.entry.name, version: r.entry.version },
    latencyMs: r.latencyMs,
    predictions: rankPredictions(r.probabilities, r.entry, k),
  });

  app.post("/classify", async (c, next) => {
    const setup = abSetup(c.env, teachers);
    if (!setup) return next();
    const received = Date.now();
    const student = store.defaultStudent();
    if (!student) throw notFound("this server hosts no default student model");
    const override = forcedArm(c);
    let client;
    try {
      client = identifyClient(c.req.raw.headers, new URL(c.req.url).protocol === "https:");
    } catch (err) {
      if (err instanceof ClientIdError) throw badRequest(err.message);
      throw err;
    }
    const { k, settings, image, format, endpoint } = await prepare(c, setup, student);
    const { arm } = await assignArm(client.id, settings.studentPercent, override);

    const runs: RunRecord[] = [];
    let served: ArmResult;
    if (arm === "teacher") {
      const teacher = await runTeacher(endpoint, setup.teacher, image);
      setMetric(c, "teacher", teacher.latencyMs);
      if (teacher.ok) {
        served = teacher;
      } else {
        runs.push(runRecord(teacher, false));
        c.header(FAULT_HEADER, teacher.fault);
        served = await runStudent(store, student, image);
      }
    } else {
      served = await runStudent(store, student, image);
    }
    runs.push(runRecord(served, true));
    if (served.arm === "student") setMetric(c, "student", served.latencyMs);

    const status = failureStatus(served);
    const shadow = arm === "student" && served.ok && draw(settings.shadowPercent);
    const mode: Mode = shadow ? "shadow" : "ab";
    const record = (extra: typeof runs): RequestRecord => ({ requestId: crypto.randomUUID(), ts: received, mode, status, runs: [...runs, ...extra] });
    afterResponse(
      c,
      setup.db,
      shadow ? runTeacher(endpoint, setup.teacher, image).then((t) => record([runRecord(t, false)])) : Promise.resolve(record([])),
    );

    if (client.setCookie) c.header("Set-Cookie", client.setCookie, { append: true });
    if (!served.ok) throw studentFailure(served);
    c.header(ARM_HEADER, served.arm);
    nameModel(c, served.entry);
    const { model, predictions } = answer(served, k);
    return c.json({ model, image: imageInfo(image, format), predictions });
  });

  app.post("/compare", async (c) => {
    const setup = abSetup(c.env, teachers);
    if (!setup) throw new HttpError(503, "POST /v1/compare needs a teacher: set TEACHER_URL, with the teacher's entry in models/manifest.json");
    const received = Date.now();
    const named = c.req.query("model");
    const student = named === undefined ? store.defaultStudent() : findModel(store, named);
    if (!student) throw notFound("this server hosts no default student model");
    if (student.role !== "student") throw badRequest(`model "${student.name}" is not a student`);
    const { k, image, format, endpoint } = await prepare(c, setup, student);

    // The teacher's request goes out first, so its network time overlaps the student's run.
    const teacherRun = runTeacher(endpoint, setup.teacher, image);
    const [s, t] = await Promise.all([runStudent(store, student, image), teacherRun]);
    setMetric(c, "student", s.latencyMs);
    setMetric(c, "teacher", t.latencyMs);
    afterResponse(c, setup.db, Promise.resolve({ requestId: crypto.randomUUID(), ts: received, mode: "compare", status: failureStatus(s), runs: [runRecord(s, true), runRecord(t, t.ok)] }));
    if (!s.ok) throw studentFailure(s);
    return c.json({
      image: imageInfo(image, format),
      student: answer(s, k),
      teacher: t.ok ? answer(t, k) : { model: { name: t.entry.name, version: t.entry.version }, latencyMs: t.latencyMs, fault: t.fault, error: FAULT_MESSAGES[t.fault] },
      agree: t.ok ? s.top1 === t.top1 : null,
      latencyRatio: t.ok && t.latencyMs > 0 ? s.latencyMs / t.latencyMs : null,
    });
  });

  return app;
}
