// The one reader of integer variables: every count, size, share and period the Worker takes from its
// vars goes through here, so each says the same thing when it is wrong, naming the variable.
import { ConfigError } from "./error.ts";

export interface IntegerRule {
  /** The value when the variable is unset or empty. */
  fallback: number;
  min: number;
  /** No upper bound when absent. */
  max?: number;
  /** How the error names an allowed value, where "an integer from min to max" says it less well. */
  expected?: string;
}

/** A variable's raw value: vars arrive as strings from wrangler.toml, as numbers from tests and bindings. */
export const varOf = (env: object, name: string): unknown => (env as Record<string, unknown>)[name];

function expectedOf({ min, max, expected }: IntegerRule): string {
  if (expected !== undefined) return expected;
  if (max !== undefined) return `an integer from ${min} to ${max}`;
  return min === 1 ? "a positive integer" : `an integer of ${min} or more`;
}

/** The integer the variable `name` holds (plain decimal digits), within the rule's range. */
export function integerVar(env: object, name: string, rule: IntegerRule): number {
  const raw = varOf(env, name);
  if (raw === undefined || raw === "") return rule.fallback;
  const n = typeof raw === "number" ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < rule.min || (rule.max !== undefined && n > rule.max)) {
    throw new ConfigError(`${name} must be ${expectedOf(rule)}, got "${String(raw)}"`);
  }
  return n;
}
