// The Worker's configuration (src/config/): every variable parsed once, each bad value refused with a
// message naming the variable, unset and empty ones at their defaults.
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/error.ts";
import { integerVar } from "../../src/config/integer-var.ts";
import { DEFAULT_CRONS, checkSecrets, cronsFromEnv, workerConfig } from "../../src/config/worker-config.ts";
import { DEFAULT_RETENTION_HOURS } from "../../src/measurements/rollup.ts";
import { DEFAULT_R2_MODELS } from "../../src/models/r2.ts";
import { DEFAULT_WARMUP } from "../../src/models/warmup.ts";

describe("integerVar", () => {
  const rule = { min: 0, max: 100, fallback: 7 };

  it("reads plain decimal strings and numbers, and gives the fallback for unset or empty ones", () => {
    expect(integerVar({ N: "42" }, "N", rule)).toBe(42);
    expect(integerVar({ N: 0 }, "N", rule)).toBe(0);
    expect(integerVar({ N: "100" }, "N", rule)).toBe(100);
    expect(integerVar({}, "N", rule)).toBe(7);
    expect(integerVar({ N: "" }, "N", rule)).toBe(7);
  });

  it("refuses anything else with a ConfigError naming the variable and what it takes", () => {
    for (const bad of ["-1", "101", "2.5", "0x10", " 5", "5e1", "lots", 3.5, Number.NaN]) {
      expect(() => integerVar({ N: bad }, "N", rule)).toThrow(ConfigError);
      expect(() => integerVar({ N: bad }, "N", rule)).toThrow(
        `N must be an integer from 0 to 100, got "${String(bad)}"`,
      );
    }
    expect(() => integerVar({ N: "0" }, "N", { min: 1, fallback: 1 })).toThrow('N must be a positive integer, got "0"');
    expect(() => integerVar({ N: "1" }, "N", { min: 2, fallback: 2 })).toThrow(
      'N must be an integer of 2 or more, got "1"',
    );
    expect(() => integerVar({ N: "x" }, "N", { min: 0, fallback: 0, expected: "a whole number of seconds" })).toThrow(
      'N must be a whole number of seconds, got "x"',
    );
  });
});

describe("workerConfig", () => {
  it("gives every default for an empty environment", () => {
    expect(workerConfig({})).toEqual({
      limits: {},
      corsOrigins: [],
      warmup: DEFAULT_WARMUP,
      r2: DEFAULT_R2_MODELS,
      retentionHours: DEFAULT_RETENTION_HOURS,
      crons: DEFAULT_CRONS,
    });
  });

  it("reads each variable", () => {
    const config = workerConfig({
      MAX_UPLOAD_BYTES: "1000",
      CORS_ORIGINS: "*",
      WARMUP_MODE: "background",
      WARMUP_RUNS: "10",
      MODELS_PREFIX: "v2/",
      MODELS_CHECK_SECONDS: "0",
      MEASUREMENT_RETENTION_HOURS: "24",
      ROLLUP_CRON: " 15 * * * * ",
      TEACHER_URL: "https://teacher.example",
      STUDENT_PERCENT: "12.5",
    });
    expect(config).toEqual({
      limits: { maxUploadBytes: 1000 },
      corsOrigins: ["*"],
      warmup: { ...DEFAULT_WARMUP, mode: "background", maxRuns: 10, minRuns: 10 },
      r2: { ...DEFAULT_R2_MODELS, prefix: "v2/", checkSeconds: 0 },
      retentionHours: 24,
      crons: { rollup: "15 * * * *", canary: DEFAULT_CRONS.canary },
    });
  });

  it("takes wrangler.toml's own values as they are", async () => {
    // The [vars] table as wrangler.toml declares it: every default must parse.
    const { readFileSync } = await import("node:fs");
    const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
    const vars = toml.slice(toml.indexOf("[vars]"), toml.indexOf("\n[[", toml.indexOf("[vars]")));
    const env = Object.fromEntries([...vars.matchAll(/^([A-Z_]+) = "([^"]*)"/gm)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(env).length).toBeGreaterThan(20);
    expect(() => workerConfig(env)).not.toThrow();
  });

  it("refuses a bad value of any variable, naming it", () => {
    const cases: [Record<string, string>, string][] = [
      [{ MAX_BATCH: "0" }, 'MAX_BATCH must be a positive integer, got "0"'],
      [{ MAX_IMAGE_SIDE: "8k" }, 'MAX_IMAGE_SIDE must be a positive integer, got "8k"'],
      [{ WARMUP_MODE: "eager" }, 'WARMUP_MODE must be one of blocking, background, got "eager"'],
      [{ WARMUP_RUNS: "1001" }, 'WARMUP_RUNS must be an integer from 0 to 1000, got "1001"'],
      [{ MODELS_CHECK_SECONDS: "-5" }, 'MODELS_CHECK_SECONDS must be a whole number of seconds, got "-5"'],
      [{ MEASUREMENT_RETENTION_HOURS: "0" }, 'MEASUREMENT_RETENTION_HOURS must be a positive integer, got "0"'],
      [
        { TEACHER_URL: "teacher.example:8000" },
        'TEACHER_URL must be an http(s) URL or empty, got "teacher.example:8000"',
      ],
      [{ STUDENT_PERCENT: "150" }, 'STUDENT_PERCENT must be a number from 0 to 100, got "150"'],
      [{ TEACHER_TIMEOUT_MS: "0" }, 'TEACHER_TIMEOUT_MS must be a number from 1 to 60000, got "0"'],
    ];
    for (const [env, message] of cases) {
      expect(() => workerConfig(env)).toThrow(ConfigError);
      expect(() => workerConfig(env)).toThrow(message);
    }
  });

  it("keeps an empty cron variable at its default", () => {
    expect(cronsFromEnv({ ROLLUP_CRON: "", CANARY_CRON: "*/2 * * * *" })).toEqual({
      rollup: DEFAULT_CRONS.rollup,
      canary: "*/2 * * * *",
    });
  });
});

describe("checkSecrets", () => {
  it("refuses a short ADMIN_TOKEN or CLIENT_ID_SECRET, naming each", () => {
    expect(() => checkSecrets({})).not.toThrow();
    expect(() => checkSecrets({ ADMIN_TOKEN: "a".repeat(32), CLIENT_ID_SECRET: "b".repeat(40) })).not.toThrow();
    expect(() => checkSecrets({ ADMIN_TOKEN: "short", CLIENT_ID_SECRET: "also-short" })).toThrow(
      /ADMIN_TOKEN is 5 characters long.*; CLIENT_ID_SECRET is 10 characters long/,
    );
  });
});
