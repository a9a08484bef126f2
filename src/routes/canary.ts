// The canary's admin API, mounted at /v1, every route behind the ADMIN_TOKEN bearer token:
//   GET  /v1/canary[?limit=50]  its state, its settings and its decisions, newest first
//   POST /v1/canary/start       starts it for the default student at the first step
//   POST /v1/canary/pause       stops the cron's decisions; the share stays
//   POST /v1/canary/resume      runs again from the paused step, with fresh evidence
//   POST /v1/canary/stop        ends it; the share stays
// Its settings change through PATCH /v1/config ({"canary": {...}}, routes/admin.ts). Each POST
// answers what GET answers; a call that does not fit the state (pausing a canary that is not
// running) answers 409 (CanaryConflict).
import { type Context, Hono } from "hono";
import { badRequest, notFound } from "../http/errors.ts";
import { pauseCanary, resumeCanary, startCanary, stopCanary } from "../canary/controller.ts";
import { readCanarySettings } from "../canary/settings.ts";
import { readCanaryDecisions, readCanaryState } from "../canary/state.ts";
import { adminAuth } from "../access/admin-auth.ts";
import type { AbBindings } from "../routing/setup.ts";
import { database } from "../storage/database.ts";
import type { RouteContext } from "./context.ts";

type CanaryContext = Context<{ Bindings: AbBindings }>;

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1_000;
const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);

function limitOf(c: CanaryContext): number {
  const raw = c.req.query("limit");
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT))
    throw badRequest(`limit must be an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(raw.slice(0, 40))}`);
  return n;
}

/** GET /v1/canary's answer (docs/api.md). */
async function canaryView(c: CanaryContext, limit = DEFAULT_LIMIT) {
  const db = database(c.env);
  const [state, settings, decisions] = await Promise.all([
    readCanaryState(db),
    readCanarySettings(db),
    readCanaryDecisions(db, limit),
  ]);
  const index = settings.settings.steps.indexOf(state.percent);
  return {
    status: state.status,
    model: state.model,
    version: state.version,
    percent: state.percent,
    step: { index: index >= 0 ? index + 1 : null, of: settings.settings.steps.length },
    stepStartedAt: iso(state.stepStartedAt),
    updatedAt: iso(state.updatedAt),
    ...settings,
    decisions,
  };
}

export function canaryRoutes({ store }: RouteContext): Hono<{ Bindings: AbBindings }> {
  const app = new Hono<{ Bindings: AbBindings }>();
  for (const path of ["/canary", "/canary/*"]) app.use(path, adminAuth());

  app.get("/canary", async (c) => c.json(await canaryView(c, limitOf(c))));
  app.post("/canary/start", async (c) => {
    const student = store.defaultStudent();
    if (!student) throw notFound("this server hosts no default student model to put under a canary");
    await startCanary(database(c.env), { name: student.name, version: student.version }, Date.now());
    return c.json(await canaryView(c));
  });
  const actions = { pause: pauseCanary, resume: resumeCanary, stop: stopCanary };
  for (const [name, act] of Object.entries(actions)) {
    app.post(`/canary/${name}`, async (c) => {
      await act(database(c.env), Date.now());
      return c.json(await canaryView(c));
    });
  }
  return app;
}
