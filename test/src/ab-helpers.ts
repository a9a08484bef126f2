/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The A/B tests' app, bindings and inputs: the edge fixtures' students in workerd, the real teacher
// hosts the global setup started (setup/teacher.ts), and the test's own D1 database.
import { applyD1Migrations, createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { encode as encodePng } from "fast-png";
import { inject } from "vitest";
import { createApp } from "../../src/app.ts";
import { signedClientCookie } from "../../src/routing/client.ts";
import type { Report } from "../../src/measurements/report.ts";
import type { AbBindings } from "../../src/routing/setup.ts";
import { fixtureStore } from "./helpers.ts";
import "./fixture-types.ts";

// wrangler.toml's bindings and vars come from worker-configuration.d.ts (`wrangler types`); these are
// the vitest config's own.
declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
      TEST_TEACHER_LIMITER: import("../../src/routing/teacher-gate.ts").RateLimiter;
      TEST_TEACHER_LIMIT: number;
    }
  }
}

export const hosts = inject("teacher");
export const ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijkl";
export const TIMEOUT_MS = 1_000;
/** The admin's credentials, which carry every right (forcing an arm, /v1/compare). */
export const asAdmin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
/** What the teacher hosts want from a caller (the Worker sends it; so do tests that ask directly). */
export const teacherAuth = { Authorization: `Bearer ${hosts.token}` };
/** Headers that force an arm, as the admin. */
export const force = (arm: string) => ({ "X-Force-Arm": arm, ...asAdmin });

/**
 * The headers of an anonymous client the Worker issued `id` to: its signed nd_client cookie (an
 * anonymous X-Client-Id picks nothing).
 */
export const asClient = async (id: string) => ({ Cookie: await signedClientCookie(id, env.CLIENT_ID_SECRET!) });

/** Gives this test file's fresh database the tables; call in beforeAll. */
export const migrate = () => applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

/** The edge app over the fixture students, routing against the fixture teacher. */
export const abApp = () => createApp({ store: fixtureStore(), abRouting: { teachers: [hosts.entry] } });
export type App = ReturnType<typeof abApp>;

export function bindings(vars: Partial<AbBindings> = {}): AbBindings {
  return {
    DB: env.DB,
    TEACHER_URL: hosts.url,
    TEACHER_TOKEN: hosts.token,
    ADMIN_TOKEN,
    CLIENT_ID_SECRET: env.CLIENT_ID_SECRET,
    STUDENT_PERCENT: "50",
    SHADOW_PERCENT: "0",
    TEACHER_TIMEOUT_MS: String(TIMEOUT_MS),
    ...vars,
  };
}

export interface Sent {
  response: Response;
  /** Milliseconds until the response was ready, before any after-response work. */
  responseMs: number;
  /** Milliseconds until the after-response work (measurements, shadow) finished too. */
  settledMs: number;
}

/** One request through the app, as the Worker runtime would run it, waiting for its waitUntil work. */
export async function send(
  app: App,
  path: string,
  init: RequestInit = {},
  vars: Partial<AbBindings> = {},
): Promise<Sent> {
  const ctx = createExecutionContext();
  const started = Date.now();
  const response = await app.fetch(new Request(`http://edge.test${path}`, init), bindings(vars), ctx);
  const responseMs = Date.now() - started;
  await waitOnExecutionContext(ctx);
  return { response, responseMs, settledMs: Date.now() - started };
}

/** A 28x28 grey PNG with a seeded pattern, so different seeds give the models different inputs. */
export function png(seed: number): Uint8Array {
  const data = new Uint8Array(28 * 28);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s >>> 16) & 0xff;
  }
  return encodePng({ width: 28, height: 28, channels: 1, depth: 8, data });
}

export function classify(
  app: App,
  seed: number,
  headers: Record<string, string> = {},
  vars: Partial<AbBindings> = {},
  path = "/v1/classify",
): Promise<Sent> {
  return send(
    app,
    path,
    { method: "POST", headers: { "Content-Type": "image/png", ...headers }, body: png(seed) },
    vars,
  );
}

export async function report(app: App, since: number, vars: Partial<AbBindings> = {}): Promise<Report> {
  const { response } = await send(
    app,
    `/v1/report?since=${since}`,
    { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } },
    vars,
  );
  if (response.status !== 200) throw new Error(`report: ${response.status} ${await response.text()}`);
  return response.json();
}

/** The report's row for an arm and model (and reason); throws when the report has several that match. */
export function row(r: Report, arm: string, model: string, reason?: string): Report["rows"][number] | undefined {
  const found = r.rows.filter(
    (x) => x.arm === arm && x.model === model && (reason === undefined || x.reason === reason),
  );
  if (found.length > 1)
    throw new Error(
      `the report has ${found.length} rows for ${arm} ${model}${reason ? ` ${reason}` : ""}: name the reason`,
    );
  return found[0];
}

/** Nearest-rank percentile, as the report computes it. */
export function nearestRank(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
