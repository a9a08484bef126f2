// The admin API, mounted at /v1, every route behind the ADMIN_TOKEN bearer token:
//   GET   /v1/report?since=  per arm and model: count, error rate, latency percentiles, agreement;
//                            D1 write transactions and cost (US dollars) per 1,000 requests
//   GET   /v1/config         the routing settings in force, their defaults, and the teacher
//   PATCH /v1/config         change settings at run time ({"studentPercent": 80}; null restores one;
//                            {"canary": {"steps": [5, 50, 100]}} the canary's, routes/canary.ts)
import { type Context, Hono } from "hono";
import type { ModelEntry } from "../../models/schema.ts";
import { badRequest } from "../http/errors.ts";
import { CanarySettingsError, parseCanaryPatch, readCanarySettings } from "../canary/settings.ts";
import { applySettingsPatch } from "../canary/settings-write.ts";
import { SinceError, buildReport, parseSince } from "../measurements/report.ts";
import { adminAuth } from "../access/admin-auth.ts";
import { SettingsError, parseSettingsPatch, readSettings } from "../routing/settings.ts";
import { type AbBindings, teacherEntry } from "../routing/setup.ts";
import { database } from "../storage/database.ts";
import { type RouteContext, jsonBody, validated } from "./context.ts";

type AdminContext = Context<{ Bindings: AbBindings }>;

/** PATCH /v1/config's key for the canary's settings (canary/settings.ts). */
const CANARY_KEY = "canary";

function settingsError(err: unknown): never {
  if (err instanceof SettingsError) throw badRequest(err.message);
  throw err;
}

export function adminRoutes(
  { store }: RouteContext,
  teachers: () => readonly ModelEntry[],
): Hono<{ Bindings: AbBindings }> {
  const app = new Hono<{ Bindings: AbBindings }>();
  // Scoped to these paths: a bare use() here would guard every /v1 route once mounted.
  for (const path of ["/report", "/config"]) app.use(path, adminAuth());

  app.get("/report", async (c) => {
    const now = Date.now();
    const since = validated(() => parseSince(c.req.query("since"), now), SinceError);
    const db = database(c.env);
    // The settings price the report's cost.
    const { settings } = await readSettings(db, c.env as Record<string, unknown>).catch(settingsError);
    return c.json(await buildReport(db, since, now + 1, settings));
  });

  const config = async (c: AdminContext) => {
    const effective = await readSettings(database(c.env), c.env as Record<string, unknown>).catch(settingsError);
    let teacher: { url: string | null; model: string | null; authenticated: boolean } = {
      url: c.env.TEACHER_URL || null,
      model: null,
      authenticated: Boolean(c.env.TEACHER_TOKEN),
    };
    try {
      teacher = { ...teacher, model: teacherEntry(c.env, teachers())?.name ?? null };
    } catch {
      // Reported as null: the routes say what is wrong when they are used.
    }
    // D1 in trouble must not hide the routing settings in force: the canary's are then unknown.
    const canary = await readCanarySettings(database(c.env)).catch((err: unknown) =>
      err instanceof Error ? err : new Error(String(err)),
    );
    const warnings = [
      effective.warning,
      canary instanceof Error ? `the canary's settings could not be read (${canary.message})` : undefined,
    ].filter((w) => w !== undefined);
    return c.json({
      ...effective,
      ...(warnings.length > 0 ? { warning: warnings.join("; ") } : {}),
      canary: canary instanceof Error ? null : canary,
      teacher,
      defaultStudent: store.defaultStudent()?.name ?? null,
      measurements: c.env.MEASUREMENTS ? "queue" : "direct",
      rateLimited: Boolean(c.env.TEACHER_RATE_LIMITER),
    });
  };
  app.get("/config", config);
  app.patch("/config", async (c) => {
    const body = await jsonBody(c, '{"studentPercent": 80}');
    const routing = validated(() => parseSettingsPatch(body, [CANARY_KEY]), SettingsError);
    const canaryValue = (body as Record<string, unknown>)[CANARY_KEY];
    const canary = canaryValue === undefined ? {} : validated(() => parseCanaryPatch(canaryValue), CanarySettingsError);
    await applySettingsPatch(database(c.env), routing, canary);
    return config(c);
  });
  return app;
}
