// The Worker's configuration: every variable of wrangler.toml's [vars] (docs/configuration.md, one
// table), parsed and checked once per isolate, so that a bad value stops the Worker at start-up with
// a message naming the variable. The routing settings (STUDENT_PERCENT and the rest) are checked here
// too; the A/B routes read them again per request (routing/settings.ts), under the overrides that
// PATCH /v1/config stores in D1.
import { type SecretBindings, secretProblems } from "../access/secrets.ts";
import { DEFAULT_RETENTION_HOURS } from "../measurements/rollup.ts";
import { DEFAULT_R2_MODELS, type R2ModelsOptions } from "../models/r2.ts";
import { DEFAULT_WARMUP, WARMUP_MODES, type WarmupMode, type WarmupOptions } from "../models/warmup.ts";
import { DEFAULT_LIMITS, type Limits } from "../routes/limits.ts";
import { SettingsError, settingsFromVars } from "../routing/settings.ts";
import { ConfigError } from "./error.ts";
import { integerVar, varOf } from "./integer-var.ts";

/** The jobs the cron triggers run (src/scheduled.ts). */
export type ScheduledJob = "rollup" | "canary";
/** wrangler.toml's [triggers] crons: the roll-up hourly, the canary every minute. */
export const DEFAULT_CRONS: Record<ScheduledJob, string> = { rollup: "5 * * * *", canary: "* * * * *" };
export const CRON_VARS: Record<ScheduledJob, string> = { rollup: "ROLLUP_CRON", canary: "CANARY_CRON" };

export interface WorkerConfig {
  /** The limits set by variables (MAX_*); unset ones keep routes/limits.ts's defaults. */
  limits: Partial<Limits>;
  /** CORS_ORIGINS: none (CORS off), a list, or "*". */
  corsOrigins: string[];
  warmup: WarmupOptions;
  /** Where models come from when the MODELS bucket is bound. */
  r2: R2ModelsOptions;
  /** MEASUREMENT_RETENTION_HOURS: raw measurement rows older than this become hourly aggregates. */
  retentionHours: number;
  crons: Record<ScheduledJob, string>;
}

/** Environment variable for each limit. */
const LIMIT_VARS: Record<keyof Limits, string> = {
  maxBodyBytes: "MAX_BODY_BYTES",
  maxUploadBytes: "MAX_UPLOAD_BYTES",
  maxBatch: "MAX_BATCH",
  maxImageSide: "MAX_IMAGE_SIDE",
  maxImagePixels: "MAX_IMAGE_PIXELS",
  maxJpegDecoderBytes: "MAX_JPEG_DECODER_BYTES",
};

/** The most warm-up runs WARMUP_RUNS may ask for. */
export const MAX_WARMUP_RUNS = 1000;

const isUnset = (raw: unknown) => raw === undefined || raw === "";

/** Limits and CORS origins from the variables; unset limits keep their defaults. */
export function optionsFromEnv(env: object): { limits: Partial<Limits>; corsOrigins: string[] } {
  const limits: Partial<Limits> = {};
  for (const [key, name] of Object.entries(LIMIT_VARS) as [keyof Limits, string][]) {
    if (!isUnset(varOf(env, name))) limits[key] = integerVar(env, name, { min: 1, fallback: DEFAULT_LIMITS[key] });
  }
  const origins = String(varOf(env, "CORS_ORIGINS") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return { limits, corsOrigins: origins };
}

/** WARMUP_MODE (blocking or background) and WARMUP_RUNS (the most warm-up runs per session; 0 turns warm-up off) over the defaults. */
export function warmupFromEnv(env: object): WarmupOptions {
  const options = { ...DEFAULT_WARMUP };
  const mode = varOf(env, "WARMUP_MODE");
  if (!isUnset(mode)) {
    if (!(WARMUP_MODES as readonly unknown[]).includes(mode))
      throw new ConfigError(`WARMUP_MODE must be one of ${WARMUP_MODES.join(", ")}, got "${String(mode)}"`);
    options.mode = mode as WarmupMode;
  }
  if (isUnset(varOf(env, "WARMUP_RUNS"))) return options;
  const runs = integerVar(env, "WARMUP_RUNS", { min: 0, max: MAX_WARMUP_RUNS, fallback: DEFAULT_WARMUP.maxRuns });
  return { ...options, maxRuns: runs, minRuns: Math.min(DEFAULT_WARMUP.minRuns, runs) };
}

/** MODELS_PREFIX and MODELS_CHECK_SECONDS over the defaults. */
export function r2OptionsFromEnv(env: object): R2ModelsOptions {
  const prefix = varOf(env, "MODELS_PREFIX");
  return {
    ...DEFAULT_R2_MODELS,
    prefix: prefix === undefined ? DEFAULT_R2_MODELS.prefix : String(prefix),
    checkSeconds: integerVar(env, "MODELS_CHECK_SECONDS", {
      min: 0,
      fallback: DEFAULT_R2_MODELS.checkSeconds,
      expected: "a whole number of seconds",
    }),
  };
}

/** ROLLUP_CRON and CANARY_CRON: the [triggers] expression each job runs on. */
export function cronsFromEnv(env: object): Record<ScheduledJob, string> {
  const crons = { ...DEFAULT_CRONS };
  for (const job of Object.keys(CRON_VARS) as ScheduledJob[]) {
    const set = varOf(env, CRON_VARS[job]);
    if (typeof set === "string" && set.trim() !== "") crons[job] = set.trim();
  }
  return crons;
}

/** TEACHER_URL, when set, must be an http(s) URL; the routing settings' defaults must be in range. */
function checkRouting(env: object): void {
  const url = varOf(env, "TEACHER_URL");
  if (!isUnset(url) && !/^https?:\/\//.test(String(url)))
    throw new ConfigError(`TEACHER_URL must be an http(s) URL or empty, got "${String(url)}"`);
  try {
    settingsFromVars(env as Record<string, unknown>);
  } catch (err) {
    if (err instanceof SettingsError) throw new ConfigError(err.message);
    throw err;
  }
}

/** Every variable, parsed and checked; a ConfigError naming the first one that is wrong. */
export function workerConfig(env: object): WorkerConfig {
  checkRouting(env);
  return {
    ...optionsFromEnv(env),
    warmup: warmupFromEnv(env),
    r2: r2OptionsFromEnv(env),
    retentionHours: integerVar(env, "MEASUREMENT_RETENTION_HOURS", { min: 1, fallback: DEFAULT_RETENTION_HOURS }),
    crons: cronsFromEnv(env),
  };
}

/** Refuses to start with a secret too short to resist guessing (access/secrets.ts). */
export function checkSecrets(env: SecretBindings): void {
  const problems = secretProblems(env);
  if (problems.length > 0) throw new ConfigError(problems.join("; "));
}
