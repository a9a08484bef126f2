// One JSON object per request, written after the response is built: which route answered, how,
// with which model, and how long it took. Workers Logs and `wrangler tail --format json` parse it
// into fields.
//
// The routes know what the middleware cannot see (the arm, the model, the inference time, a teacher
// fault); they note it with noteRequest(c, ...), which keeps it in the context variable
// "requestLog". Everything else (id, route, status, totals, the error) is read here.
//
// Nothing secret goes in: no headers, cookies, query strings or bodies are logged, the route is the
// pattern ("/v1/models/:name/classify"), not the URL, and as a last guard any credential the request
// carried (Authorization, Cookie, X-Api-Key) is cut out of the line wherever it appears, for
// instance echoed in an error message.
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { RequestIdVariables } from "./request-id.ts";

/** What the routes add to a request's line. */
export interface RequestNotes {
  /** The A/B arm that answered; "none" when the request was not routed. */
  arm?: "student" | "teacher";
  /** The model that answered. */
  model?: { name: string; version: string };
  /** Milliseconds the answering model took: the student's run, or the teacher's round trip. */
  inferenceMs?: number;
  /** Why the teacher did not answer, when it was asked and the student answered (or failed) instead. */
  teacherFault?: string;
  /** The teacher's own words about that fault (capped). */
  teacherFaultDetail?: string;
}

export type RequestLogVariables = RequestIdVariables & { requestLog: RequestNotes };

/** The logged object. */
export interface RequestLogRecord {
  event: "request";
  requestId: string | null;
  method: string;
  /** The matched route pattern; null when no route matched (a 404, a CORS preflight). */
  route: string | null;
  status: number;
  arm: "student" | "teacher" | "none";
  model?: string;
  modelVersion?: string;
  inferenceMs?: number;
  totalMs: number;
  teacherFault?: string;
  teacherFaultDetail?: string;
  /** The error the request ended in, 4xx included. */
  error?: { name: string; message: string; detail?: string; cause?: { name: string; message: string }; stack?: string };
}

export type LogLevel = "info" | "error";

export interface RequestLogOptions {
  /** Where a line goes; default console.log, or console.error for 5xx (Workers Logs keeps the level). */
  sink?: (line: string, level: LogLevel) => void;
  /** Which requests are logged; default all. Called with the finished record. */
  sample?: (record: RequestLogRecord) => boolean;
  /** Request headers whose values never appear in a line (lower case). */
  secretHeaders?: readonly string[];
}

export const DEFAULT_SECRET_HEADERS = ["authorization", "proxy-authorization", "cookie", "x-api-key"] as const;
/** Shorter values are not cut: they would cut ordinary words out of the line. */
const MIN_SECRET_LENGTH = 8;
const MAX_DETAIL_LENGTH = 300;
const REDACTED = "[redacted]";

const defaultSink = (line: string, level: LogLevel) => (level === "error" ? console.error(line) : console.log(line));

/** Adds what a route knows to the request's line; later notes win. */
export function noteRequest(c: Context, notes: RequestNotes): void {
  const own = c as unknown as Context<{ Variables: RequestLogVariables }>;
  own.set("requestLog", { ...own.get("requestLog"), ...notes });
}

/** The pattern of the last route handler that matched; app.use middleware ("ALL", ".../*") is not one. */
function routeOf(c: Context): string | null {
  const handlers = matchedRoutes(c).filter((r) => !(r.method === "ALL" && r.path.endsWith("*")));
  return handlers.at(-1)?.path ?? null;
}

const capped = (text: string) => (text.length > MAX_DETAIL_LENGTH ? `${text.slice(0, MAX_DETAIL_LENGTH)}...` : text);

function describeError(err: Error, status: number): NonNullable<RequestLogRecord["error"]> {
  // Hono's HTTPException keeps the name "Error": its class says more.
  const name = err.name === "Error" && err.constructor.name ? err.constructor.name : err.name;
  const out: NonNullable<RequestLogRecord["error"]> = { name, message: capped(err.message) };
  const detail = (err as { detail?: unknown }).detail;
  if (typeof detail === "string") out.detail = capped(detail);
  if (err.cause instanceof Error) out.cause = { name: err.cause.name, message: capped(err.cause.message) };
  // An unexplained failure is only useful with its place in the code.
  if (status >= 500 && out.detail === undefined && err.stack) out.stack = err.stack.split("\n").slice(0, 8).join("\n");
  return out;
}

/** The credentials a request carries: whole header values, a token without its scheme, each cookie's value. */
export function secretsOf(headers: Headers, names: readonly string[] = DEFAULT_SECRET_HEADERS): string[] {
  const found = new Set<string>();
  for (const name of names) {
    const value = headers.get(name)?.trim();
    if (value === undefined) continue;
    found.add(value);
    if (name === "cookie") {
      for (const pair of value.split(";")) found.add(pair.slice(pair.indexOf("=") + 1).trim());
    } else {
      found.add(value.slice(value.indexOf(" ") + 1).trim());
    }
  }
  // Longest first, so a whole value goes before a piece of it.
  return [...found].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

/** The line with every secret cut out, as it is written in JSON (quotes and backslashes escaped). */
export function redact(line: string, secrets: readonly string[]): string {
  let out = line;
  for (const secret of secrets) out = out.split(JSON.stringify(secret).slice(1, -1)).join(REDACTED);
  return out;
}

/**
 * Logs one JSON line per request when it is answered; mount it after requestId, whose id it logs.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { requestId } from "./middleware/request-id.ts";
 * import { requestLog } from "./middleware/request-log.ts";
 *
 * const app = new Hono();
 * app.use(requestId());
 * app.use(
 *   requestLog({
 *     sink: (line, level) => (level === "error" ? console.error(line) : console.log(line)),
 *     sample: (record) => record.status >= 400 || Math.random() < 0.1,
 *   }),
 * );
 * ```
 */
export function requestLog(options: RequestLogOptions = {}): MiddlewareHandler<{ Variables: RequestLogVariables }> {
  const sink = options.sink ?? defaultSink;
  const sample = options.sample ?? (() => true);
  const secretHeaders = options.secretHeaders ?? DEFAULT_SECRET_HEADERS;
  return async function requestLog(c, next) {
    const started = performance.now();
    await next();
    const notes: RequestNotes = c.get("requestLog") ?? {};
    const status = c.res.status;
    const record: RequestLogRecord = {
      event: "request",
      requestId: c.get("requestId") ?? null,
      method: c.req.method,
      route: routeOf(c),
      status,
      arm: notes.arm ?? "none",
      ...(notes.model ? { model: notes.model.name, modelVersion: notes.model.version } : {}),
      ...(notes.inferenceMs !== undefined ? { inferenceMs: round(notes.inferenceMs) } : {}),
      totalMs: round(performance.now() - started),
      ...(notes.teacherFault ? { teacherFault: notes.teacherFault } : {}),
      ...(notes.teacherFaultDetail ? { teacherFaultDetail: capped(notes.teacherFaultDetail) } : {}),
      ...(c.error ? { error: describeError(c.error, status) } : {}),
    };
    if (!sample(record)) return;
    sink(redact(JSON.stringify(record), secretsOf(c.req.raw.headers, secretHeaders)), status >= 500 ? "error" : "info");
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;
