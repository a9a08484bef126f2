// The canary controller's settings: the steps it walks STUDENT_PERCENT through and the thresholds a
// step must hold. Changed through PATCH /v1/config ({"canary": {...}}), stored in the settings table
// under "canary.<name>" (JSON values); unset ones take the defaults below. Read fresh on every cron
// tick (once a minute), so they need no cache.
import type { D1Database } from "@cloudflare/workers-types";
import * as z from "zod";

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

const stepsProblem = (value: unknown) =>
  `canary.steps must be a list of 1 to ${MAX_STEPS} percentages, each above 0 and at most 100, strictly increasing (e.g. [5, 25, 50, 100]), got ${JSON.stringify(value)}`;

function numberProblem(key: NumberKey, value: unknown): string {
  const { min, max, integer } = RANGES[key];
  return `canary.${key} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${JSON.stringify(value)}`;
}

/** Each setting's schema; a failure is reported with the whole value (settingProblem), not zod's path into it. */
const SETTING_SCHEMAS = {
  steps: z
    .array(z.number().gt(0).max(100))
    .min(1)
    .max(MAX_STEPS)
    .refine((steps) => steps.every((v, i) => i === 0 || v > steps[i - 1]!))
    .describe("strictly increasing student shares, in percent"),
  ...(Object.fromEntries(
    (Object.keys(RANGES) as NumberKey[]).map((key) => {
      const { min, max, integer } = RANGES[key];
      return [key, (integer ? z.int() : z.number()).min(min).max(max)];
    }),
  ) as Record<NumberKey, z.ZodNumber>),
};

const settingProblem = (key: CanarySettingKey, value: unknown) =>
  key === "steps" ? stepsProblem(value) : numberProblem(key, value);

function checkSetting<K extends CanarySettingKey>(key: K, value: unknown): CanarySettings[K] {
  const parsed = SETTING_SCHEMAS[key].safeParse(value);
  if (!parsed.success) throw new CanarySettingsError(settingProblem(key, value));
  return parsed.data as CanarySettings[K];
}

export type CanaryPatch = Partial<{ [K in CanarySettingKey]: CanarySettings[K] | null }>;

const knownKeys = () => `known: ${KEYS.join(", ")}`;

/** PATCH /v1/config's "canary" object: known keys; a value sets one, null restores its default. */
export const canaryPatchSchema = z
  .strictObject(
    Object.fromEntries(KEYS.map((key) => [key, SETTING_SCHEMAS[key].nullable().optional()])) as {
      [K in CanarySettingKey]: z.ZodOptional<z.ZodNullable<(typeof SETTING_SCHEMAS)[K]>>;
    },
    {
      error: (issue) =>
        issue.code === "unrecognized_keys"
          ? `unknown canary setting "${issue.keys[0]?.slice(0, 40)}" (${knownKeys()})`
          : `canary must be a JSON object of settings (${knownKeys()})`,
    },
  )
  .refine((patch) => Object.keys(patch).length > 0, { error: `canary names no setting (${knownKeys()})` })
  .describe("the canary's settings; null restores one's default");

/** Validates PATCH /v1/config's "canary" object with canaryPatchSchema; the first problem is the error. */
export function parseCanaryPatch(value: unknown): CanaryPatch {
  const parsed = canaryPatchSchema.safeParse(value);
  if (parsed.success) return parsed.data as CanaryPatch;
  const issue = parsed.error.issues[0]!;
  const key = issue.path[0];
  // A setting's own problem names the setting and its whole value, as the dashboard's form shows it.
  if (typeof key === "string" && (KEYS as string[]).includes(key))
    throw new CanarySettingsError(settingProblem(key as CanarySettingKey, (value as Record<string, unknown>)[key]));
  throw new CanarySettingsError(issue.message);
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
