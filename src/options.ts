// What createApp takes, the defaults, and how the Worker's environment variables override them.
import { type SecretBindings, secretProblems } from "./access/secrets.ts";
import type { ModelStore } from "./models/store.ts";
import type { AbRoutingOptions } from "./routes/ab.ts";
import type { DashboardOptions } from "./routes/dashboard.ts";

export interface Limits {
  /** Largest request body, in bytes (images and JSON alike). */
  maxBodyBytes: number;
  /** Largest uploaded image (a raw body, or the file of a multipart form), in bytes. */
  maxUploadBytes: number;
  /** Largest batch one infer request may carry. */
  maxBatch: number;
  /** Largest image width or height. */
  maxImageSide: number;
  /** Largest image width x height. */
  maxImagePixels: number;
  /** Most memory the JPEG decoder may take for one image (see ImageLimits.maxJpegDecoderBytes). */
  maxJpegDecoderBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 4 * 1024 * 1024,
  // Uploads, pixels and the JPEG decoder are sized together so that 8 concurrent uploads at these
  // limits stay under a Worker's 128 MB (docs/ab-safety.md, memory). 768x512 pixels take a VGA
  // frame (640x480); a 16-bit RGBA PNG of 768x512 stored without compression would be 3.1 MB.
  maxUploadBytes: 2.5 * 1024 * 1024,
  maxBatch: 64,
  maxImageSide: 8192,
  maxImagePixels: 768 * 512,
  // jpeg-js's own count for a 4-component JPEG without subsampling at maxImagePixels: 28 bytes a pixel.
  maxJpegDecoderBytes: 28 * 768 * 512,
};

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

export class ConfigError extends Error {
  override name = "ConfigError";
}

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
