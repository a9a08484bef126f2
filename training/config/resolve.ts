// A run's configuration = a preset, then a JSON config file, then command-line flags, each
// overriding the one before. Every value is checked, and an error names where the bad value came from.
import { readFileOrExplain } from "../io/read.ts";
import { PRESETS } from "./presets.ts";
import { type DistillConfig, ConfigError, FIELDS, checkValue, isField, kebab, parseValue } from "./schema.ts";

export { ConfigError } from "./schema.ts";

/** Reads a config file: a JSON object of config fields, optionally with "preset". */
export function readConfigFile(path: string): { preset?: string; values: Partial<DistillConfig> } {
  const text = readFileOrExplain(path, "config file", (m) => new ConfigError(m)).toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new ConfigError(`${path}: must be a JSON object of config fields`);
  const values: Partial<DistillConfig> = {};
  let preset: string | undefined;
  for (const [key, v] of Object.entries(json)) {
    if (key === "preset") {
      if (typeof v !== "string") throw new ConfigError(`${path}: preset must be a string`);
      preset = v;
      continue;
    }
    if (!isField(key))
      throw new ConfigError(
        `${path}: unknown config field "${key}" (fields: preset, ${Object.keys(FIELDS).join(", ")})`,
      );
    checkValue(key, v, path);
    (values as Record<string, unknown>)[key] = v;
  }
  return { preset, values };
}

export function preset(name: string): DistillConfig {
  const p = PRESETS[name];
  if (!p) throw new ConfigError(`unknown preset "${name}" (presets: ${Object.keys(PRESETS).join(", ")})`);
  return structuredClone(p);
}

export interface ConfigSources {
  /** From --preset; else the config file's "preset"; else "quick". */
  preset?: string;
  file?: string;
  /** From flags, already parsed with parseFlag. */
  flags: Partial<DistillConfig>;
}

export function resolveConfig(sources: ConfigSources): { preset: string; config: DistillConfig } {
  const file = sources.file ? readConfigFile(sources.file) : undefined;
  const name = sources.preset ?? file?.preset ?? "quick";
  const config = { ...preset(name), ...file?.values, ...sources.flags };
  for (const key of Object.keys(FIELDS) as (keyof DistillConfig)[])
    checkValue(
      key,
      config[key],
      sources.flags[key] !== undefined
        ? `--${kebab(key)}`
        : sources.file && file?.values[key] !== undefined
          ? sources.file
          : `preset ${name}`,
    );
  if (config.valSize >= config.trainLimit && config.trainLimit > 0)
    throw new ConfigError(`val-size (${config.valSize}) must be smaller than train-limit (${config.trainLimit})`);
  return { preset: name, config };
}

/**
 * Parses `--kebab-name value` (or `--kebab-name=value`; booleans also as `--name` / `--no-name`) for a
 * config field. Returns null when the flag is not a config field.
 */
export function parseFlag(
  flag: string,
  next: () => string | undefined,
): { key: keyof DistillConfig; value: unknown } | null {
  const m = /^--(no-)?([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(flag);
  if (!m) return null;
  const [, negated, name, inline] = m;
  const key = Object.keys(FIELDS).find((k) => kebab(k) === name) as keyof DistillConfig | undefined;
  if (!key) return null;
  if (FIELDS[key].kind === "boolean" && inline === undefined) return { key, value: !negated };
  if (negated) throw new ConfigError(`--no-${name}: only true/false settings can be negated`);
  const text = inline ?? next();
  if (text === undefined) throw new ConfigError(`--${name} needs a value (${FIELDS[key].help})`);
  const value = parseValue(key, text);
  checkValue(key, value, `--${name}`);
  return { key, value };
}

export function configHelp(): string {
  return (Object.keys(FIELDS) as (keyof DistillConfig)[])
    .map((k) => {
      const f = FIELDS[k];
      const arg =
        f.kind === "boolean"
          ? `--[no-]${kebab(k)}`
          : `--${kebab(k)} ${f.placeholder ?? (f.kind === "list" || f.kind === "numbers" ? "A,B" : f.kind === "string" ? "NAME" : "N")}`;
      return `  ${arg.padEnd(30)} ${f.help} [quick: ${JSON.stringify(PRESETS.quick![k])}, full: ${JSON.stringify(PRESETS.full![k])}]`;
    })
    .join("\n");
}
