// The canary controller's settings: the steps it walks STUDENT_PERCENT through and the thresholds a
// step must hold. Changed through PATCH /v1/config ({"canary": {...}}), stored in the settings table
// under "canary.<name>" (JSON values); unset ones take the defaults below. Read fresh on every cron
// tick (once a minute), so they need no cache.
import type { D1Database } from "@cloudflare/workers-types";

export interface CanarySettings {
  /** The student shares it walks through, strictly increasing, each above 0 and at most 100. */
  steps: number[];
  /** Lowest top-1 agreement with the teacher over the window's pairs. */
  minAgreement: number;
  /** Highest p99 of the student's latency (every run that reached it, failures included), in ms. */
  maxP99Ms: number;
  /** Highest share of the student's runs that failed. */
  maxErrorRate: number;
  /** Highest share of the paired requests where the teacher failed (agreement cannot be judged). */
  maxTeacherFaultRate: number;
  /** How far back a tick looks (never before the current step began). */
  windowMinutes: number;
  /** Evidence a check needs: paired requests (agreement, teacher faults) or student runs (error rate, p99). */
  minSamples: number;
}

export type CanarySettingKey = keyof CanarySettings;

export const CANARY_DEFAULTS: CanarySettings = {
  steps: [5, 25, 50, 100],
  minAgreement: 0.9,
  maxP99Ms: 250,
  maxErrorRate: 0.01,
  maxTeacherFaultRate: 0.2,
  windowMinutes: 10,
  // 100: a nearest-rank p99 over 100 runs or more is not the slowest run, so one cold start (with
  // the blocking warm-up, several hundred ms) cannot roll a canary back on its own.
  minSamples: 100,
};

type NumberKey = Exclude<CanarySettingKey, "steps">;
const RANGES: Record<NumberKey, { min: number; max: number; integer?: boolean }> = {
  minAgreement: { min: 0, max: 1 },
  maxP99Ms: { min: 0, max: 60_000 },
  maxErrorRate: { min: 0, max: 1 },
  maxTeacherFaultRate: { min: 0, max: 1 },
  // A day at most: ticks read raw rows only, which the roll-up keeps MEASUREMENT_RETENTION_HOURS (72).
  windowMinutes: { min: 1, max: 24 * 60, integer: true },
  minSamples: { min: 1, max: 1_000_000, integer: true },
};
const KEYS = Object.keys(CANARY_DEFAULTS) as CanarySettingKey[];
const MAX_STEPS = 20;
/** The settings table's key of a canary setting. */
const storedKey = (key: CanarySettingKey) => `canary.${key}`;

export class CanarySettingsError extends Error {
  override name = "CanarySettingsError";
}

function checkSteps(value: unknown): number[] {
  const problem = `canary.steps must be a list of 1 to ${MAX_STEPS} percentages, each above 0 and at most 100, strictly increasing (e.g. [5, 25, 50, 100]), got ${JSON.stringify(value)}`;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_STEPS) throw new CanarySettingsError(problem);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > 100 || (i > 0 && v <= (value[i - 1] as number)))
      throw new CanarySettingsError(problem);
  }
  return value as number[];
}

function checkNumber(key: NumberKey, value: unknown): number {
  const { min, max, integer } = RANGES[key];
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new CanarySettingsError(
      `canary.${key} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkSetting<K extends CanarySettingKey>(key: K, value: unknown): CanarySettings[K] {
  return (key === "steps" ? checkSteps(value) : checkNumber(key as NumberKey, value)) as CanarySettings[K];
}

export type CanaryPatch = Partial<{ [K in CanarySettingKey]: CanarySettings[K] | null }>;

/** Validates PATCH /v1/config's "canary" object: known keys; a value sets one, null restores its default. */
export function parseCanaryPatch(value: unknown): CanaryPatch {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new CanarySettingsError(`canary must be a JSON object of settings (known: ${KEYS.join(", ")})`);
  const entries = Object.entries(value);
  if (entries.length === 0) throw new CanarySettingsError(`canary names no setting (known: ${KEYS.join(", ")})`);
  const patch: Record<string, unknown> = {};
  for (const [key, v] of entries) {
    if (!(KEYS as string[]).includes(key))
      throw new CanarySettingsError(`unknown canary setting "${key}" (known: ${KEYS.join(", ")})`);
    patch[key] = v === null ? null : checkSetting(key as CanarySettingKey, v);
  }
  return patch as CanaryPatch;
}

/** The settings table rows a patch writes (null: remove the row). */
export const canarySettingValues = (patch: CanaryPatch): Record<string, string | null> =>
  Object.fromEntries(
    Object.entries(patch).map(([key, v]) => [
      storedKey(key as CanarySettingKey),
      v === null ? null : JSON.stringify(v),
    ]),
  );

export interface EffectiveCanarySettings {
  settings: CanarySettings;
  defaults: CanarySettings;
  overridden: CanarySettingKey[];
}

/** The settings in force: stored overrides over the defaults. A stored value that no longer passes is ignored, and logged. */
export async function readCanarySettings(db: D1Database): Promise<EffectiveCanarySettings> {
  const { results } = await db
    .prepare("SELECT key, value FROM settings WHERE key LIKE 'canary.%'")
    .all<{ key: string; value: string }>();
  const settings: CanarySettings = { ...CANARY_DEFAULTS };
  const overridden: CanarySettingKey[] = [];
  for (const row of results) {
    const key = row.key.slice("canary.".length) as CanarySettingKey;
    if (!KEYS.includes(key)) continue;
    try {
      (settings as unknown as Record<string, unknown>)[key] = checkSetting(key, JSON.parse(row.value));
      overridden.push(key);
    } catch (err) {
      console.error(`canary setting ${row.key} ignored: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { settings, defaults: CANARY_DEFAULTS, overridden };
}
