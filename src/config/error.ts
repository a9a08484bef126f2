// A configuration the Worker cannot start with (a bad variable, a missing binding): its message names
// what to fix. The Worker logs it, and tells it to the admin alone.
export class ConfigError extends Error {
  override name = "ConfigError";
}
