// PATCH /v1/config's routing settings, as one zod schema that both validates the body
// (parseSettingsPatch in settings.ts) and describes it in /openapi.json (api/routes.ts).
// The fields are not listed here: they come from SETTING_RULES in settings.ts. A new
// setting is added there, with its range, and appears in the patch and in the document at once.
import * as z from "zod";

/**
 * A plain decimal, as vars and form fields write numbers: "50", "-1", "0.5". JavaScript's Number()
 * would also take "0x32", " 5e1 " or "Infinity", which nobody means as a percentage.
 */
export const DECIMAL = /^-?\d+(\.\d+)?$/;

export interface SettingRange {
  min: number;
  max: number;
}

/** One setting: a number in its range, or the same as a plain decimal string (the dashboard's forms). */
export function settingValue(name: string, { min, max }: SettingRange) {
  const error = (issue: { input?: unknown }) =>
    `${name} must be a number from ${min} to ${max}, got ${JSON.stringify(issue.input)}`;
  const inRange = (n: number) => n >= min && n <= max;
  return z.union(
    [
      z.number({ error }).min(min, { error }).max(max, { error }),
      z
        .string({ error })
        .regex(DECIMAL, { error })
        .refine((s) => inRange(Number(s)), { error })
        .transform(Number),
    ],
    { error },
  );
}

/**
 * The patch: known keys only; a value sets the key, null returns it to its default. `alsoKnown`
 * names keys that another part of the body's owner validates (PATCH /v1/config's "canary"), with
 * their schemas for the document: they are accepted here and left out of the parsed patch.
 */
export function settingsPatchSchema<K extends string>(
  rules: Record<K, SettingRange>,
  alsoKnown: readonly string[] | Record<string, z.ZodType> = [],
) {
  const keys = Object.keys(rules) as K[];
  const others: Record<string, z.ZodType> = Array.isArray(alsoKnown)
    ? Object.fromEntries(alsoKnown.map((key) => [key, z.unknown()]))
    : (alsoKnown as Record<string, z.ZodType>);
  const known = [...keys, ...Object.keys(others)].join(", ");
  const settings = Object.fromEntries(keys.map((key) => [key, settingValue(key, rules[key]).nullable().optional()]));
  return z
    .strictObject(
      { ...settings, ...Object.fromEntries(Object.entries(others).map(([key, schema]) => [key, schema.optional()])) },
      {
        error: (issue) =>
          issue.code === "unrecognized_keys"
            ? `unknown setting "${issue.keys[0]?.slice(0, 40)}" (known: ${known})`
            : "body must be a JSON object",
      },
    )
    .refine((patch) => Object.keys(patch).length > 0, { error: `body names no setting (known: ${known})` })
    .transform(
      (patch) =>
        Object.fromEntries(Object.entries(patch).filter(([key]) => !(key in others))) as Partial<
          Record<K, number | null>
        >,
    );
}
