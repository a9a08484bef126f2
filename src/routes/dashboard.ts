// The dashboard, mounted at /dashboard: a page for people, admin only.
//   GET  /dashboard[?window=1h]  signed in: the dashboard; signed out: the sign-in form alone
//   POST /dashboard/sign-in      form field `token` (ADMIN_TOKEN): sets the session cookie, 303 back;
//                                a wrong token answers 401 with the form again, and past the
//                                address's allowance of wrong guesses 429 (access/auth-throttle.ts)
//   POST /dashboard/sign-out     revokes the session (D1) and clears its cookie, 303 back to the form
//   GET  /dashboard/data?window= the page's figures as JSON: the report over the window (its student rows
//                                with agreementInterval, 95% Wilson; its cost), series over time, the split
//   POST /dashboard/config       form fields studentPercent, shadowPercent: changes the split
//   POST /dashboard/canary/pause, /dashboard/canary/resume: as POST /v1/canary/pause and /resume
//   GET  /dashboard/assets/<f>   uPlot and the page's script and styles (public: they hold no data)
//
// CSRF: every POST must come from the page's own origin (Hono's csrf middleware checks Origin and
// Sec-Fetch-Site), and every POST that acts for a session must carry that session's CSRF token (a form
// field the page got from the server). SameSite=Strict on the cookie is a third line, not the only one.
import type { D1Database } from "@cloudflare/workers-types";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { csrf } from "hono/csrf";
import { etag } from "hono/etag";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { WINDOWS, type WindowName, dashboardPage, signInPage } from "../dashboard/pages.ts";
import { buildSeries, wilsonInterval } from "../dashboard/series.ts";
import { authThrottle } from "../access/auth-throttle.ts";
import { type Session, type SessionOptions, checkCsrfToken, sessionCookies } from "../dashboard/session.ts";
import type { StaticAsset } from "../dashboard/static-asset.ts";
import { pauseCanary, resumeCanary } from "../canary/controller.ts";
import { readCanarySettings } from "../canary/settings.ts";
import { applySettingsPatch } from "../canary/settings-write.ts";
import { readCanaryDecisions, readCanaryState } from "../canary/state.ts";
import { HttpError, badRequest } from "../http/errors.ts";
import { buildReport, durationMs } from "../measurements/report.ts";
import { adminTokenOf, isAdminToken } from "../access/admin-auth.ts";
import { SettingsError, parseSettingsPatch, readSettings } from "../routing/settings.ts";
import type { AbBindings } from "../routing/setup.ts";
import { database } from "../storage/database.ts";
import { validated } from "./context.ts";

/** A file the dashboard serves as it is. */
export interface DashboardOptions {
  /**
   * uPlot and the page's script and styles, by name (src/dashboard/assets.ts's DASHBOARD_ASSETS; the
   * Worker bundles them as Text modules, which plain Node cannot import, so the host hands them in).
   */
  assets: Readonly<Record<string, StaticAsset>>;
  /** Where the routes are mounted; the page's links and the cookie's path follow it. Default "/dashboard". */
  base?: string;
  /** How often the page asks for fresh figures; default 5 s. */
  pollMs?: number;
  session?: Omit<SessionOptions, "path">;
}

type Env = { Bindings: AbBindings };

/** Chart intervals: about 15 to 30 points a window; whole hours from 24 h up (the aggregates' grain). */
const INTERVAL_MS: Record<WindowName, number> = {
  "15m": 60_000,
  "1h": 2 * 60_000,
  "24h": 3_600_000,
  "7d": 6 * 3_600_000,
};
const DEFAULT_WINDOW: WindowName = "1h";
/** Canary decisions the page lists, newest first. */
const CANARY_DECISIONS = 20;

function windowOf(c: Context): WindowName {
  const raw = c.req.query("window");
  if (raw === undefined || raw === "") return DEFAULT_WINDOW;
  if (!(WINDOWS as readonly string[]).includes(raw))
    throw badRequest(`window must be one of ${WINDOWS.join(", ")}; got "${raw.slice(0, 20)}"`);
  return raw as WindowName;
}

// Only the Worker's own files may run, load or be posted to; no page may frame this one.
const PAGE_HEADERS = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  referrerPolicy: "same-origin",
});

/** Hono's csrf check, answering a refusal in the API's error shape. */
function sameOriginPosts(): MiddlewareHandler {
  const check = csrf();
  return async (c, next) => {
    let passed = false;
    try {
      await check(c, async () => {
        passed = true;
      });
    } catch (err) {
      if (!passed && err instanceof HTTPException) throw new HttpError(403, "cross-origin form posts are refused");
      throw err;
    }
    await next();
  };
}

/** The canary's state (without its revision token), settings and latest decisions, as D1 has them. */
async function canaryPanel(db: D1Database) {
  const [{ token: _revision, ...state }, settings, decisions] = await Promise.all([
    readCanaryState(db),
    readCanarySettings(db),
    readCanaryDecisions(db, CANARY_DECISIONS),
  ]);
  return { ...state, ...settings, decisions };
}

/** The form's fields as strings (repeated or file fields are refused: which value counts would be a guess). */
async function formFields(c: Context): Promise<Record<string, string>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type))
    throw new HttpError(415, "send the form as application/x-www-form-urlencoded");
  const body = await c.req.parseBody({ all: true });
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    const name = key.slice(0, 40);
    if (Array.isArray(value)) throw badRequest(`form field "${name}" is repeated; send it once`);
    if (typeof value !== "string") throw badRequest(`form field "${name}" must be a single text value`);
    out[key] = value;
  }
  return out;
}

export function dashboardRoutes(options: DashboardOptions): Hono<Env> {
  const base = options.base ?? "/dashboard";
  const pollMs = options.pollMs ?? 5_000;
  const sessions = sessionCookies({ ...options.session, path: base });
  const throttle = authThrottle();
  const app = new Hono<Env>();

  app.get("/assets/:file", etag(), (c) => {
    const asset = Object.hasOwn(options.assets, c.req.param("file")) ? options.assets[c.req.param("file")] : undefined;
    if (!asset) throw new HttpError(404, `no dashboard asset "${c.req.param("file").slice(0, 40)}"`);
    // Revalidated every time (the ETag makes that cheap): a new deployment's script is never mixed
    // with an old page.
    return c.body(asset.body, 200, { "Content-Type": asset.type, "Cache-Control": "no-cache" });
  });

  app.use("*", PAGE_HEADERS, async (c, next) => {
    if (!adminTokenOf(c)) {
      console.error("dashboard disabled: the ADMIN_TOKEN secret is not set");
      return c.json({ error: "the dashboard is disabled on this server" }, 503);
    }
    await next();
    // Nothing the dashboard answers may be cached: it is per session and live.
    c.header("Cache-Control", "no-store");
  });
  app.on("POST", "*", sameOriginPosts());

  /** The request's session; undefined when signed out, expired or revoked. */
  const sessionOf = (c: Context<Env>) => sessions.read(c, adminTokenOf(c)!, database(c.env));
  /** The session, for routes that act for one; the CSRF token too when `form` is given. */
  const signedIn = async (c: Context<Env>, form?: Record<string, string>): Promise<Session> => {
    const session = await sessionOf(c);
    if (!session) throw new HttpError(401, `not signed in (or the session expired): sign in at ${base}`);
    if (form && !(await checkCsrfToken(session, form.csrf)))
      throw new HttpError(403, "missing or wrong CSRF token: reload the dashboard");
    return session;
  };

  app.get("/", async (c) => {
    const session = await sessionOf(c);
    if (!session) return c.html(signInPage(base));
    return c.html(dashboardPage({ base, window: windowOf(c), csrfToken: session.csrfToken, pollMs }));
  });

  app.post("/sign-in", async (c) => {
    const { token } = await formFields(c);
    if (!token) return c.html(signInPage(base, "Enter the admin token."), 400);
    // Over the allowance the form comes back with why (the 429 carries Retry-After).
    const refused = (err: HttpError) =>
      c.html(signInPage(base, `${err.message[0]!.toUpperCase()}${err.message.slice(1)}.`), 429);
    try {
      await throttle.assertOpen(c);
    } catch (err) {
      if (err instanceof HttpError && err.status === 429) return refused(err);
      throw err;
    }
    if (!(await isAdminToken(c, token))) {
      const over = await throttle.failed(c, "dashboard sign-in");
      return over ? refused(over) : c.html(signInPage(base, "That is not the admin token."), 401);
    }
    await sessions.start(c, token);
    return c.redirect(base, 303);
  });

  app.post("/sign-out", async (c) => {
    const session = await signedIn(c, await formFields(c));
    await sessions.end(c, session, database(c.env));
    return c.redirect(base, 303);
  });

  app.get("/data", async (c) => {
    await signedIn(c);
    const window = windowOf(c);
    const db = database(c.env);
    const until = Date.now() + 1;
    const since = until - 1 - durationMs(window)!;
    // The settings first: the report's cost is priced on them.
    const routing = await readSettings(db, c.env as Record<string, unknown>);
    const [report, series, canary] = await Promise.all([
      buildReport(db, since, until, routing.settings),
      buildSeries(db, since, until, INTERVAL_MS[window]),
      canaryPanel(db),
    ]);
    // The report's rows as GET /v1/report has them, each student row with its agreement's interval.
    const rows = report.rows.map((r) => ({
      ...r,
      agreementInterval:
        r.agreement?.top1 != null
          ? wilsonInterval(Math.round(r.agreement.top1 * r.agreement.pairs), r.agreement.pairs)
          : null,
    }));
    return c.json({ window, report: { ...report, rows }, series, routing, canary });
  });

  app.post("/config", async (c) => {
    const form = await formFields(c);
    await signedIn(c, form);
    const { csrf: _token, ...fields } = form;
    // Empty fields leave their setting as it is.
    const patch = Object.fromEntries(Object.entries(fields).filter(([, v]) => v.trim() !== ""));
    const db = database(c.env);
    await applySettingsPatch(
      db,
      validated(() => parseSettingsPatch(patch), SettingsError),
    );
    return c.json(await readSettings(db, c.env as Record<string, unknown>));
  });

  const canaryActions = { pause: pauseCanary, resume: resumeCanary };
  for (const [name, act] of Object.entries(canaryActions)) {
    app.post(`/canary/${name}`, async (c) => {
      await signedIn(c, await formFields(c));
      const db = database(c.env);
      // A call its state does not allow throws the canary's own 409.
      await act(db, Date.now());
      return c.json(await canaryPanel(db));
    });
  }

  return app;
}
