// What A/B routing needs from the Worker's bindings, checked once per request: the D1 database, the
// teacher's URL and token, the teacher's manifest entry (its input shape, normalization and labels;
// the file itself lives on the teacher host), the rate limiter, where measurements go, and the
// experiment's name.
import type { D1Database, Queue } from "@cloudflare/workers-types";
import type { ModelEntry } from "../../models/schema.ts";
import { clientIdSecret } from "../access/secrets.ts";
import { HttpError } from "../http/errors.ts";
import { type MeasurementMessage, type MeasurementSink, measurementSink } from "../measurements/sink.ts";
import { DEFAULT_EXPERIMENT } from "./split.ts";
import type { RateLimiter } from "./teacher-gate.ts";
import { DEFAULT_TEACHER_AUTH_HEADER, TeacherLinkError, checkTeacherLink, teacherAuthHeader } from "./teacher-link.ts";

export interface AbBindings {
  DB?: D1Database;
  /** Base URL of the teacher's Open Inference Protocol server; A/B routing is off without it. */
  TEACHER_URL?: string;
  /** The teacher's name in models/manifest.json and on that server; default: the manifest's teacher. */
  TEACHER_MODEL?: string;
  /** Secret the Worker sends the teacher host (teacher-link.ts); none sent when unset. */
  TEACHER_TOKEN?: string;
  /** The header that carries it; default Authorization (as "Bearer <token>"). */
  TEACHER_AUTH_HEADER?: string;
  STUDENT_PERCENT?: string | number;
  SHADOW_PERCENT?: string | number;
  TEACHER_TIMEOUT_MS?: string | number;
  BREAKER_FAULTS?: string | number;
  BREAKER_COOLDOWN_MS?: string | number;
  /** Prices of the report's cost (routing/settings.ts). */
  WORKERS_USD_PER_MILLION_REQUESTS?: string | number;
  WORKERS_USD_PER_MILLION_CPU_MS?: string | number;
  TEACHER_USD_PER_GPU_HOUR?: string | number;
  TEACHER_REQUESTS_PER_GPU_SECOND?: string | number;
  /** Names the experiment and salts the client buckets: a new name reshuffles who gets the student. */
  EXPERIMENT?: string;
  /** Secret guarding the report, configuration and API key endpoints (32 characters or more). */
  ADMIN_TOKEN?: string;
  /** Signs the client ids the Worker issues (routing/client.ts); default: derived from ADMIN_TOKEN. */
  CLIENT_ID_SECRET?: string;
  /** Cloudflare Rate Limiting binding: each client's allowance of teacher-bound requests. */
  TEACHER_RATE_LIMITER?: RateLimiter;
  /** Cloudflare Rate Limiting binding: each address's allowance of wrong guesses (access/auth-throttle.ts). */
  AUTH_RATE_LIMITER?: RateLimiter;
  /** Queue the measurement rows go through; written straight to D1 without it. */
  MEASUREMENTS?: Queue<MeasurementMessage>;
}

export interface AbSetup {
  db: D1Database;
  teacherUrl: string;
  teacher: ModelEntry;
  /** The header that proves the Worker to the teacher host, when TEACHER_TOKEN is set. */
  auth: [string, string] | undefined;
  limiter: RateLimiter | undefined;
  sink: MeasurementSink;
  experiment: string;
  /** The key that signs client ids and tags clients in measurement rows. */
  clientSecret: string;
}

/** A 503 that tells anonymous callers only that routing is misconfigured; the detail is logged. */
export const misconfigured = (detail: string) =>
  new HttpError(503, "A/B routing is misconfigured on this server", detail);

/**
 * The teacher's manifest entry: TEACHER_MODEL's, else the manifest's only teacher; undefined when the
 * manifest has none and none is named. A 503 otherwise.
 */
export function teacherEntry(env: AbBindings, teachers: readonly ModelEntry[]): ModelEntry | undefined {
  const name = env.TEACHER_MODEL;
  if (name) {
    const entry = teachers.find((m) => m.name === name);
    if (!entry) throw misconfigured(`TEACHER_MODEL "${name}" is not a teacher in models/manifest.json`);
    return entry;
  }
  if (teachers.length > 1)
    throw misconfigured(`models/manifest.json has ${teachers.length} teachers; set TEACHER_MODEL`);
  return teachers[0];
}

function teacherAuth(env: AbBindings): [string, string] | undefined {
  if (!env.TEACHER_TOKEN) return undefined;
  const header = env.TEACHER_AUTH_HEADER || DEFAULT_TEACHER_AUTH_HEADER;
  try {
    checkTeacherLink(env.TEACHER_TOKEN, header);
  } catch (err) {
    if (err instanceof TeacherLinkError) throw misconfigured(err.message);
    throw err;
  }
  return teacherAuthHeader(env.TEACHER_TOKEN, header);
}

/**
 * The setup, or undefined when A/B routing is off: no TEACHER_URL, or no teacher in the manifest (the
 * Worker then serves only its students).
 */
export function abSetup(env: AbBindings, teachers: readonly ModelEntry[]): AbSetup | undefined {
  if (!env.TEACHER_URL) return undefined;
  if (!/^https?:\/\//.test(env.TEACHER_URL)) throw misconfigured("TEACHER_URL must be an http(s) URL");
  const teacher = teacherEntry(env, teachers);
  if (!teacher) return undefined;
  if (!env.DB) throw misconfigured("the D1 binding DB is missing");
  const clientSecret = clientIdSecret(env);
  if (!clientSecret)
    throw misconfigured("no key to sign client ids: set CLIENT_ID_SECRET, or ADMIN_TOKEN, of 32 characters or more");
  return {
    db: env.DB,
    teacherUrl: env.TEACHER_URL,
    teacher,
    auth: teacherAuth(env),
    limiter: env.TEACHER_RATE_LIMITER,
    sink: measurementSink(env.DB, env.MEASUREMENTS),
    experiment: env.EXPERIMENT || DEFAULT_EXPERIMENT,
    clientSecret,
  };
}

/** Agreement compares label indices, so both models must name the same classes in the same order. */
export const sameLabels = (a: ModelEntry, b: ModelEntry) =>
  a.labels.length === b.labels.length && a.labels.every((l, i) => l === b.labels[i]);

/** The default student must be comparable with the teacher: otherwise routing is misconfigured. */
export function checkSameLabels(student: ModelEntry, teacher: ModelEntry): void {
  if (!sameLabels(student, teacher))
    throw misconfigured(`student "${student.name}" and teacher "${teacher.name}" have different labels`);
}
