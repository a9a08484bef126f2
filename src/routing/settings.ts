// Routing settings: the Worker's vars give the defaults, the admin API can override them at run time
// (stored in D1). Each isolate caches what it read for a few seconds, so routing costs no query on
// most requests and a change reaches every isolate within CACHE_MS.
import type { D1Database } from "@cloudflare/workers-types";

export interface RoutingSettings {
  /** Share of clients routed to the student, 0..100. */
  studentPercent: number;
  /** Share of student-served requests also sent to the teacher after the response, 0..100. */
  shadowPercent: number;
  /** Longest wait for the teacher before the student answers instead. */
  teacherTimeoutMs: number;
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
};
const KEYS = Object.keys(SETTING_RULES) as SettingKey[];
const CACHE_MS = 5_000;

export class SettingsError extends Error {
  override name = "SettingsError";
}

function check(key: SettingKey, value: unknown, source: string): number {
  const rule = SETTING_RULES[key];
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
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

/** Validates a PATCH body: known keys only; a number sets the key, null returns it to the default. */
export function parseSettingsPatch(body: unknown): Partial<Record<SettingKey, number | null>> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new SettingsError("body must be a JSON object");
  const patch: Partial<Record<SettingKey, number | null>> = {};
  for (const [key, value] of Object.entries(body)) {
    if (!(KEYS as string[]).includes(key)) throw new SettingsError(`unknown setting "${key}" (known: ${KEYS.join(", ")})`);
    patch[key as SettingKey] = value === null ? null : check(key as SettingKey, value, key);
  }
  if (Object.keys(patch).length === 0) throw new SettingsError(`body names no setting (known: ${KEYS.join(", ")})`);
  return patch;
}

const cache = new WeakMap<D1Database, { overrides: Partial<RoutingSettings>; until: number }>();

async function readOverrides(db: D1Database): Promise<Partial<RoutingSettings>> {
  const hit = cache.get(db);
  if (hit && hit.until > Date.now()) return hit.overrides;
  let results: { key: string; value: string }[];
  try {
    ({ results } = await db.prepare("SELECT key, value FROM settings").all<{ key: string; value: string }>());
  } catch (err) {
    // A database problem (say, migrations not applied) must not stop traffic: route on the defaults.
    console.error(`routing settings unreadable, using the defaults: ${err instanceof Error ? err.message : String(err)}`);
    return {};
  }
  const overrides: Partial<RoutingSettings> = {};
  for (const row of results) {
    if ((KEYS as string[]).includes(row.key)) overrides[row.key as SettingKey] = Number(row.value);
  }
  cache.set(db, { overrides, until: Date.now() + CACHE_MS });
  return overrides;
}

export interface EffectiveSettings {
  settings: RoutingSettings;
  defaults: RoutingSettings;
  overridden: SettingKey[];
}

export async function loadSettings(db: D1Database, vars: Record<string, unknown>): Promise<EffectiveSettings> {
  const defaults = settingsFromVars(vars);
  const overrides = await readOverrides(db);
  return { settings: { ...defaults, ...overrides }, defaults, overridden: Object.keys(overrides) as SettingKey[] };
}

export async function applySettingsPatch(db: D1Database, patch: Partial<Record<SettingKey, number | null>>): Promise<void> {
  const now = Date.now();
  const statements = Object.entries(patch).map(([key, value]) =>
    value === null
      ? db.prepare("DELETE FROM settings WHERE key = ?1").bind(key)
      : db
          .prepare("INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3")
          .bind(key, String(value), now),
  );
  await db.batch(statements);
  cache.delete(db);
}
