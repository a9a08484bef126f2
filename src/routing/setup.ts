// What A/B routing needs from the Worker's bindings, checked once per request: the D1 database, the
// teacher's URL, and the teacher's manifest entry (its input shape, normalization and labels; the
// file itself lives on the teacher host).
import type { D1Database } from "@cloudflare/workers-types";
import type { ModelEntry } from "../../models/schema.ts";
import { HttpError } from "../errors.ts";

export interface AbBindings {
  DB?: D1Database;
  /** Base URL of the teacher's Open Inference Protocol server; A/B routing is off without it. */
  TEACHER_URL?: string;
  /** The teacher's name in models/manifest.json and on that server; default: the manifest's teacher. */
  TEACHER_MODEL?: string;
  STUDENT_PERCENT?: string | number;
  SHADOW_PERCENT?: string | number;
  TEACHER_TIMEOUT_MS?: string | number;
  /** Secret guarding the report and configuration endpoints. */
  ADMIN_TOKEN?: string;
}

export interface AbSetup {
  db: D1Database;
  teacherUrl: string;
  teacher: ModelEntry;
}

const misconfigured = (message: string) => new HttpError(503, `A/B routing is misconfigured: ${message}`);

/**
 * The teacher's manifest entry: TEACHER_MODEL's, else the manifest's only teacher; undefined when the
 * manifest has none and none is named. A 503 names what is wrong otherwise.
 */
export function teacherEntry(env: AbBindings, teachers: readonly ModelEntry[]): ModelEntry | undefined {
  const name = env.TEACHER_MODEL;
  if (name) {
    const entry = teachers.find((m) => m.name === name);
    if (!entry) throw misconfigured(`TEACHER_MODEL "${name}" is not a teacher in models/manifest.json`);
    return entry;
  }
  if (teachers.length > 1) throw misconfigured(`models/manifest.json has ${teachers.length} teachers; set TEACHER_MODEL`);
  return teachers[0];
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
  return { db: env.DB, teacherUrl: env.TEACHER_URL, teacher };
}

/** Agreement compares label indices, so both models must name the same classes in the same order. */
export function checkSameLabels(student: ModelEntry, teacher: ModelEntry): void {
  if (student.labels.length !== teacher.labels.length || student.labels.some((l, i) => l !== teacher.labels[i])) {
    throw misconfigured(`student "${student.name}" and teacher "${teacher.name}" have different labels`);
  }
}
