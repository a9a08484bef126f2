// Routing settings: the Worker's vars give the defaults, the admin API can override them at run time
// (stored in D1). Each isolate serves the overrides it read last and refreshes them in the background
// (stale-while-revalidate, through waitUntil) once they are older than CACHE_MS: no request waits on
// D1 except an isolate's very first, a change reaches every isolate within about CACHE_MS, and a D1
// failure keeps the last values read (a kill switch set through PATCH /v1/config stays set) and is
// logged, retried at most once per CACHE_MS.
import type { D1Database, D1PreparedStatement } from "@cloudflare/workers-types";
import { firstProblem } from "../http/first-problem.ts";
import { DECIMAL, settingsPatchSchema } from "./settings-patch.ts";

export interface RoutingSettings {
  /** Share of clients routed to the student, 0..100. */
  studentPercent: number;
  /** Share of student-served requests also sent to the teacher after the response, 0..100. */
  shadowPercent: number;
  /** Longest wait for the teacher before the student answers instead. */
  teacherTimeoutMs: number;
  /** Consecutive teacher faults that open the circuit breaker. */
  breakerFaults: number;
  /** How long an open breaker keeps the teacher out before one probe may try it. */
  breakerCooldownMs: number;
  /** Prices of the report's cost (measurements/cost.ts): Workers, US dollars per million requests. */
  workersUsdPerMillionRequests: number;
  /** Workers, US dollars per million CPU milliseconds. */
  workersUsdPerMillionCpuMs: number;
  /** The teacher's GPU, US dollars per GPU-hour. */
  teacherUsdPerGpuHour: number;
  /** Requests a second one GPU serves with the teacher. */
  teacherRequestsPerGpuSecond: number;
}

export type SettingKey = keyof RoutingSettings;

interface SettingRule {
  env: string;
  min: number;
  max: number;
  fallback: number;
}

export const SETTING_RULES: Record<SettingKey, SettingRule> = {
  studentPercent: { env: "STUDENT_PERCENT", min: 0, max: 100, fallback: 100 },
  shadowPercent: { env: "SHADOW_PERCENT", min: 0, max: 100, fallback: 0 },
  teacherTimeoutMs: { env: "TEACHER_TIMEOUT_MS", min: 1, max: 60_000, fallback: 1_000 },
  breakerFaults: { env: "BREAKER_FAULTS", min: 1, max: 1_000, fallback: 5 },
  breakerCooldownMs: { env: "BREAKER_COOLDOWN_MS", min: 100, max: 3_600_000, fallback: 30_000 },
  // Cloudflare's published Workers pricing (Workers Paid, Standard usage model, read 2026-12-07),
  // beyond the plan's included requests and CPU time.
  workersUsdPerMillionRequests: { env: "WORKERS_USD_PER_MILLION_REQUESTS", min: 0, max: 1_000, fallback: 0.3 },
  workersUsdPerMillionCpuMs: { env: "WORKERS_USD_PER_MILLION_CPU_MS", min: 0, max: 1_000, fallback: 0.02 },
  // An assumption for the operator to replace: a placeholder in the range of one inference-class GPU on demand.
  teacherUsdPerGpuHour: { env: "TEACHER_USD_PER_GPU_HOUR", min: 0, max: 10_000, fallback: 1 },
  // The teacher host with batching on at 32 clients (docs/benchmarks.md), measured on 2 CPU cores: a
  // GPU serves more; set the figure `npm run bench:teacher` gives on yours.
  teacherRequestsPerGpuSecond: { env: "TEACHER_REQUESTS_PER_GPU_SECOND", min: 0.01, max: 1_000_000, fallback: 596.5 },
};
const KEYS = Object.keys(SETTING_RULES) as SettingKey[];
export const CACHE_MS = 5_000;
/** An isolate's first read waits at most this long for D1, then routes on the defaults. */
const FIRST_READ_MS = 1_000;

export class SettingsError extends Error {
  override name = "SettingsError";
}

function check(key: SettingKey, value: unknown, source: string): number {
  const rule = SETTING_RULES[key];
  const n = typeof value === "string" ? (DECIMAL.test(value) ? Number(value) : NaN) : value;
  if (typeof n !== "number" || !Number.isFinite(n) || n < rule.min || n > rule.max) {
    throw new SettingsError(`${source} must be a number from ${rule.min} to ${rule.max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The defaults from the Worker's vars (strings in wrangler.toml, numbers in tests). */
export function settingsFromVars(vars: Record<string, unknown>): RoutingSettings {
  const out = {} as RoutingSettings;
  for (const key of KEYS) {
    const rule = SETTING_RULES[key];
    const raw = vars[rule.env];
    out[key] = raw === undefined || raw === "" ? rule.fallback : check(key, raw, rule.env);
  }
  return out;
}

/**
 * Validates a PATCH body (settings-patch.ts's schema): known keys only; a number sets the key, null
 * returns it to the default. `alsoKnown` names keys another part of the body's owner takes (they are
 * not this function's).
 */
export function parseSettingsPatch(
  body: unknown,
  alsoKnown: readonly string[] = [],
): Partial<Record<SettingKey, number | null>> {
  const parsed = settingsPatchSchema(SETTING_RULES, alsoKnown).safeParse(body);
  if (!parsed.success) throw new SettingsError(firstProblem(parsed.error));
  return parsed.data;
}

type Overrides = Partial<RoutingSettings>;

interface Cached {
  /** What D1 said last; undefined until a read succeeds. */
  overrides: Overrides | undefined;
  /** When the last read was tried (successful or not). */
  triedAt: number;
  /** The read in flight, so concurrent requests start one. */
  reading: Promise<void> | undefined;
  /** Why the last read failed; cleared by a success. */
  error: string | undefined;
}

const caches = new WeakMap<D1Database, Cached>();

async function readOverrides(db: D1Database): Promise<Overrides> {
  const { results } = await db.prepare("SELECT key, value FROM settings").all<{ key: string; value: string }>();
  const overrides: Overrides = {};
  for (const row of results) {
    if ((KEYS as string[]).includes(row.key)) overrides[row.key as SettingKey] = Number(row.value);
  }
  return overrides;
}

/** Reads D1 into the cache; never rejects (a failure is logged and kept with the old values). */
function refresh(db: D1Database, cached: Cached): Promise<void> {
  cached.triedAt = Date.now();
  cached.reading ??= readOverrides(db)
    .then(
      (overrides) => {
        cached.overrides = overrides;
        cached.error = undefined;
      },
      (err: unknown) => {
        cached.error = err instanceof Error ? err.message : String(err);
        const kept =
          cached.overrides === undefined
            ? "routing on the defaults"
            : `keeping the last values read (${JSON.stringify(cached.overrides)})`;
        console.error(`routing settings unreadable from D1, ${kept}: ${cached.error}`);
      },
    )
    .finally(() => {
      cached.reading = undefined;
    });
  return cached.reading;
}

function cacheOf(db: D1Database): Cached {
  let cached = caches.get(db);
  if (!cached) {
    cached = { overrides: undefined, triedAt: 0, reading: undefined, error: undefined };
    caches.set(db, cached);
  }
  return cached;
}

export interface EffectiveSettings {
  settings: RoutingSettings;
  defaults: RoutingSettings;
  overridden: SettingKey[];
}

function effective(vars: Record<string, unknown>, overrides: Overrides): EffectiveSettings {
  const defaults = settingsFromVars(vars);
  return { settings: { ...defaults, ...overrides }, defaults, overridden: Object.keys(overrides) as SettingKey[] };
}

/**
 * The settings in force, for the request path. `background` keeps a refresh alive after the response
 * (the execution context's waitUntil).
 */
export async function loadSettings(
  db: D1Database,
  vars: Record<string, unknown>,
  background: (work: Promise<unknown>) => void,
): Promise<EffectiveSettings> {
  const cached = cacheOf(db);
  const stale = Date.now() - cached.triedAt >= CACHE_MS;
  if (cached.triedAt === 0) {
    // Nothing read yet in this isolate: wait, briefly, rather than route the first requests on
    // defaults that may contradict a kill switch.
    const first = refresh(db, cached);
    await Promise.race([first, new Promise((r) => setTimeout(r, FIRST_READ_MS))]);
    background(first);
  } else if (stale && !cached.reading) {
    background(refresh(db, cached));
  }
  return effective(vars, cached.overrides ?? {});
}

/**
 * The settings as D1 has them now, for the admin API: reads D1 first; when it cannot, the values in
 * force and why they may be stale.
 */
export async function readSettings(
  db: D1Database,
  vars: Record<string, unknown>,
): Promise<EffectiveSettings & { warning?: string }> {
  const cached = cacheOf(db);
  await cached.reading; // a read that started earlier may predate the latest change
  await refresh(db, cached);
  const out = effective(vars, cached.overrides ?? {});
  return cached.error === undefined
    ? out
    : {
        ...out,
        warning: `the settings table could not be read (${cached.error}); these are the values in force in this isolate`,
      };
}

/**
 * Statements that set (a string) or remove (null, back to the default) rows of the settings table;
 * run them in one batch with whatever else must change with them, then refreshSettings.
 */
export function settingStatements(
  db: D1Database,
  values: Record<string, string | null>,
  now = Date.now(),
): D1PreparedStatement[] {
  return Object.entries(values).map(([key, value]) =>
    value === null
      ? db.prepare("DELETE FROM settings WHERE key = ?1").bind(key)
      : db
          .prepare(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
          )
          .bind(key, value, now),
  );
}

/** Makes this isolate see a change it wrote at once (not through a read that started before it). */
export async function refreshSettings(db: D1Database): Promise<void> {
  const cached = cacheOf(db);
  await cached.reading;
  await refresh(db, cached);
}

export const routingSettingValues = (
  patch: Partial<Record<SettingKey, number | null>>,
): Record<string, string | null> =>
  Object.fromEntries(Object.entries(patch).map(([key, value]) => [key, value === null ? null : String(value)]));
