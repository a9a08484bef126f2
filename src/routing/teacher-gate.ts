// The Worker's only way to the teacher, for every kind of teacher-bound traffic (the teacher arm,
// forced or by the split; shadows; /v1/compare): the client's allowance first (Cloudflare's Rate
// Limiting binding, per client), then the circuit breaker, then the call itself.
import type { ModelEntry } from "../../models/schema.ts";
import type { RateLimiter } from "../access/rate-limiter.ts";
import { type ArmResult, runTeacher, teacherSkipped } from "./arms.ts";
import type { BreakerSettings, CircuitBreaker } from "./breaker.ts";
import type { TeacherEndpoint } from "./teacher-client.ts";

export type { RateLimiter };

export interface TeacherGateOptions {
  endpoint: TeacherEndpoint;
  entry: ModelEntry;
  breaker: CircuitBreaker;
  breakerSettings: BreakerSettings;
  timeoutMs: number;
  /** No binding: no limit. */
  limiter?: RateLimiter;
  /** Whose allowance a call uses (access/caller.ts rateLimitKey). */
  clientKey: string;
}

export class TeacherGate {
  constructor(private readonly options: TeacherGateOptions) {}

  get entry(): ModelEntry {
    return this.options.entry;
  }

  /** Takes one teacher call from the client's allowance; false when the client is over its limit. */
  async allowance(): Promise<boolean> {
    const { limiter, clientKey } = this.options;
    if (!limiter) return true;
    try {
      return (await limiter.limit({ key: clientKey })).success;
    } catch (err) {
      // The limit guards the expensive side: when it cannot be checked, the student answers.
      console.error(
        JSON.stringify({
          event: "teacher_rate_limiter_failed",
          overTheLimit: clientKey,
          error: err instanceof Error ? err.message : String(err),
        }),
      );
      return false;
    }
  }

  /** The client is over its limit: what is recorded for the teacher's part. */
  limited(): ArmResult {
    return teacherSkipped(
      this.options.entry,
      "rate_limited",
      `client ${this.options.clientKey} is over its teacher allowance`,
    );
  }

  /**
   * The teacher's answer, or why there is none. While the breaker is open the teacher is not called
   * (fault circuit_open). `budgetMs`, when shorter than the timeout, cuts the call there (fault cut):
   * a shadow must end while waitUntil still runs.
   */
  async run(input: Float32Array, budgetMs?: number): Promise<ArmResult> {
    const { endpoint, entry, breaker, breakerSettings, timeoutMs } = this.options;
    const admission = breaker.admit(breakerSettings);
    if (admission === "open") return teacherSkipped(entry, "circuit_open", `the breaker for ${endpoint.url} is open`);
    const cut = budgetMs !== undefined && budgetMs < timeoutMs;
    let result = await runTeacher(endpoint, entry, input, cut ? budgetMs : timeoutMs);
    if (cut && !result.ok && result.fault === "timeout")
      result = { ...result, fault: "cut", detail: `cut after ${budgetMs} ms, the time left after the response` };
    breaker.record(admission, result.ok, breakerSettings);
    return result;
  }
}
