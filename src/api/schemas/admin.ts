// The admin API's answers: the report, the settings in force, the canary, API keys.
import * as z from "zod";

const Iso = z.iso.datetime();
const Percentiles = z.looseObject({
  includesFailures: z.boolean(),
  runs: z.int().min(0),
  p50: z.number().nullable(),
  p95: z.number().nullable(),
  p99: z.number().nullable(),
});

const Numbers = z.record(z.string(), z.number());
const CostPerThousand = z.looseObject({
  total: z.number(),
  workersRequests: z.number(),
  workersCpu: z.number(),
  teacherGpu: z.number(),
});

export const Report = z.looseObject({
  since: Iso,
  until: Iso,
  requests: z.int().min(0),
  fallbacks: z.int().min(0).describe("requests routed to the teacher that the student answered"),
  writes: z.looseObject({
    transactions: z.int().min(0),
    rows: z.int().min(0),
    perThousandRequests: z.number().nullable(),
  }),
  rows: z.array(
    z.looseObject({
      arm: z.enum(["student", "teacher"]),
      model: z.string(),
      version: z.string().nullable(),
      reason: z.string().describe("why the arm ran: split, forced, compare, shadow"),
      count: z.int().min(0),
      served: z.int().min(0),
      errors: z.int().min(0),
      errorRate: z.number().min(0).max(1),
      faults: z.record(z.string(), z.int().min(0)),
      latencyMs: Percentiles,
      successLatencyMs: Percentiles,
      agreement: z.looseObject({ pairs: z.int().min(0), top1: z.number().nullable() }).nullable(),
      latencyRatio: z.number().nullable(),
    }),
  ),
  cost: z
    .looseObject({
      currency: z.literal("USD"),
      prices: Numbers.describe("the price settings it was priced on"),
      split: z.looseObject({ studentPercent: z.number(), shadowPercent: z.number() }),
      studentMsPerRun: z.number().nullable().describe("mean in-Worker ms of the window's student runs"),
      teacherGpuSecondsPerRun: z.number(),
      perThousandRequests: z.looseObject({
        student: CostPerThousand.nullable(),
        teacher: CostPerThousand,
        split: CostPerThousand.nullable(),
        window: CostPerThousand.nullable(),
      }),
    })
    .describe(
      "US dollars per 1,000 requests per arm, at the current split and over the window (docs/ab-testing.md, Cost)",
    ),
});

const CanarySettings = z.looseObject({
  settings: z.record(z.string(), z.unknown()),
  defaults: z.record(z.string(), z.unknown()),
  overridden: z.array(z.string()),
});

export const Config = z.looseObject({
  settings: Numbers.describe("the routing settings in force"),
  defaults: Numbers.describe("the Worker's vars, or the built-in defaults"),
  overridden: z.array(z.string()).describe("settings set through PATCH /v1/config"),
  warning: z.string().optional(),
  canary: CanarySettings.nullable(),
  teacher: z.looseObject({ url: z.string().nullable(), model: z.string().nullable(), authenticated: z.boolean() }),
  defaultStudent: z.string().nullable(),
  measurements: z.enum(["queue", "direct"]),
  rateLimited: z.boolean(),
});

export const Canary = CanarySettings.extend({
  status: z.enum(["off", "running", "paused", "rolled_back", "done"]),
  model: z.string().nullable(),
  version: z.string().nullable(),
  percent: z.number().min(0).max(100),
  step: z.looseObject({ index: z.int().min(1).nullable(), of: z.int().min(0) }),
  stepStartedAt: Iso.nullable(),
  updatedAt: Iso.nullable(),
  decisions: z
    .array(
      z.looseObject({
        id: z.int(),
        at: Iso,
        action: z.string(),
        actor: z.enum(["cron", "admin"]),
        model: z.string().nullable(),
        version: z.string().nullable(),
        percentFrom: z.number(),
        percentTo: z.number(),
        reason: z.string(),
        figures: z.record(z.string(), z.unknown()).nullable(),
        settings: z.record(z.string(), z.unknown()).nullable(),
        repeats: z.int().min(1),
        firstAt: Iso.nullable(),
      }),
    )
    .describe("newest first"),
});

export const ApiKey = z.looseObject({
  id: z.string(),
  name: z.string(),
  rights: z.array(z.enum(["force", "compare"])),
  createdAt: Iso,
  revokedAt: Iso.nullable(),
});
export const NewApiKey = ApiKey.extend({ key: z.string().describe("the secret, shown this once") });
export const ApiKeys = z.looseObject({ keys: z.array(ApiKey) });
