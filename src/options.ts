// What createApp takes, the defaults, and how the Worker's environment variables override them.
import { type SecretBindings, secretProblems } from "./access/secrets.ts";
import type { ModelStore } from "./models/store.ts";
import type { RequestLogOptions } from "./middleware/request-log.ts";
import type { AbRoutingOptions } from "./routes/ab.ts";
import type { DashboardOptions } from "./routes/dashboard.ts";
import type { Limits } from "./routes/limits.ts";
import { ConfigError } from "./config/error.ts";

export { DEFAULT_LIMITS, type Limits } from "./routes/limits.ts";
export { ConfigError };

export interface AppOptions {
  store: ModelStore;
  limits?: Partial<Limits>;
  /** Origins allowed to call the API from a browser; none (CORS off) by default. "*" allows any. */
  corsOrigins?: string[];
  /** How GET /v2 names this server. */
  server?: { name: string; version: string };
  /**
   * A/B routing against a teacher served elsewhere (routes/ab.ts, routes/admin.ts, routes/keys.ts),
   * given the manifest entries of the models that host serves (their input specs and labels). Off
   * when absent.
   */
  abRouting?: AbRoutingOptions;
  /** The dashboard (routes/dashboard.ts), served at /dashboard beside A/B routing; off when absent. */
  dashboard?: DashboardOptions;
  /** The JSON line logged per request (middleware/request-log.ts); false turns it off. */
  requestLog?: RequestLogOptions | false;
}

/** Environment variable for each limit (wrangler.toml [vars], or .dev.vars locally). */
const LIMIT_VARS: Record<keyof Limits, string> = {
  maxBodyBytes: "MAX_BODY_BYTES",
  maxUploadBytes: "MAX_UPLOAD_BYTES",
  maxBatch: "MAX_BATCH",
  maxImageSide: "MAX_IMAGE_SIDE",
  maxImagePixels: "MAX_IMAGE_PIXELS",
  maxJpegDecoderBytes: "MAX_JPEG_DECODER_BYTES",
};

/** Limits and CORS origins from string environment variables; unset ones keep their defaults. */
export function optionsFromEnv(env: Record<string, unknown>): Pick<AppOptions, "limits" | "corsOrigins"> {
  const limits: Partial<Limits> = {};
  for (const [key, name] of Object.entries(LIMIT_VARS) as [keyof Limits, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const n = typeof raw === "number" ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${name} must be a positive integer, got "${String(raw)}"`);
    limits[key] = n;
  }
  const origins = String(env.CORS_ORIGINS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return { limits, corsOrigins: origins };
}

/** Refuses to start with a secret too short to resist guessing (access/secrets.ts). */
export function checkSecrets(env: SecretBindings): void {
  const problems = secretProblems(env);
  if (problems.length > 0) throw new ConfigError(problems.join("; "));
}
